"""runbridge: the Azure ML SDK v1 Run logging API, written into the trackers you already use.

Importing this package loads no backend and none of mlflow, tensorboard, pandas or matplotlib:
backends are opened from the entry-point group ``runbridge`` when a workspace names them.
"""

from .errors import (BackendFailedWarning, BackendUnavailableError, FileExistsInRunError,
                     PropertyChangeError, RunbridgeError, RunEndedError, RunFailedError,
                     RunNotFoundError)
from .hookspecs import hookimpl
from .migrate import migrate
from .run import Experiment, Run, Workspace
from .scripts.config import Environment, ScriptRunConfig

__version__ = "0.1.0"

__all__ = [
    "Workspace", "Experiment", "Run", "ScriptRunConfig", "Environment", "hookimpl", "migrate",
    "RunbridgeError", "BackendUnavailableError", "BackendFailedWarning", "RunNotFoundError",
    "RunEndedError", "PropertyChangeError", "FileExistsInRunError", "RunFailedError",
]

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


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: the viewer is loaded on first use only
    """`runbridge.RunDetails`, the notebook view (azureml.widgets' name), imported when first asked for."""
    if name == "RunDetails":
        from .viewer.widgets import RunDetails

        return RunDetails
    raise AttributeError(f"module 'runbridge' has no attribute {name!r}")

__all__ = [
    "Workspace", "Experiment", "Run", "ScriptRunConfig", "Environment", "hookimpl", "migrate",
    "RunbridgeError", "BackendUnavailableError", "BackendFailedWarning", "RunNotFoundError",
    "RunEndedError", "PropertyChangeError", "FileExistsInRunError", "RunFailedError",
]

"""runbridge: the Azure ML SDK v1 Run logging API, written into the trackers you already use.

Importing this package loads no backend and none of mlflow, tensorboard, pandas or matplotlib:
backends are opened from the entry-point group ``runbridge`` when a workspace names them. The
public names are imported on first use (PEP 562), so ``import runbridge`` costs a few milliseconds
and ``runbridge --help`` does not pay for the run machinery.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import (BackendFailedWarning, BackendUnavailableError, FileExistsInRunError,
                     PropertyChangeError, RunbridgeError, RunEndedError, RunFailedError,
                     RunNotFoundError)

if TYPE_CHECKING:
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

#: Where each lazily imported public name lives.
_LAZY = {"Workspace": ".run", "Experiment": ".run", "Run": ".run", "ScriptRunConfig": ".scripts.config",
         "Environment": ".scripts.config", "hookimpl": ".hookspecs", "migrate": ".migrate",
         # The notebook view (azureml.widgets' name); it needs the ``ui`` extra.
         "RunDetails": ".viewer.widgets"}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (later lookups are plain attributes)."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'runbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """The package object: a public name that is also a submodule's name (`migrate`) stays the
    public function when that submodule is imported (the import system sets the submodule as an
    attribute of its package, which would hide the function)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == f".{name}":
            self.__dict__.pop(name, None)  # the next lookup imports the public name
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext runbridge``: a notebook's ``from azureml.core import ...`` resolves to runbridge
    (unless the Azure ML SDK is installed; see `runbridge.azureml`)."""
    from .azureml import install

    install()

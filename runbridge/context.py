"""`Run.get_context()`: the run of this process (one object per process).

Inside a process started by `submit` / `runbridge run`, environment variables name the run and
its backends (`runbridge.scripts.environment`). Outside one, a new run is started in the
configured workspace, in an experiment named after the script, and completed when the
interpreter exits normally (or failed by an uncaught exception), so a standalone script still
records everything. How a run is attached or started is the caller's (`runbridge.run`); this
module keeps the one object per process.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Callable, TypeVar

from .errors import RunbridgeError
from .scripts.environment import ENV_EXPERIMENT, ENV_RUN_ID

R = TypeVar("R")

_lock = threading.Lock()
_context: object | None = None


def script_experiment_name() -> str:
    """The experiment a standalone script logs to: the script's file name without suffix."""
    script = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else ""
    return Path(script).stem or "interactive"


def get_context(allow_offline: bool, attach: Callable[[str, str], R], start: Callable[[str], R]) -> R:
    """This process's run: made once, by `attach(run id, experiment)` when the environment names a
    submitted run, else by `start(experiment)` (unless `allow_offline` is False)."""
    global _context
    with _lock:
        if _context is not None:
            return _context  # type: ignore[return-value]
        run_id = os.environ.get(ENV_RUN_ID)
        if run_id:
            run = attach(run_id, os.environ.get(ENV_EXPERIMENT) or script_experiment_name())
        elif not allow_offline:
            raise RunbridgeError(
                "Run.get_context(allow_offline=False) was called outside a submitted run; start the "
                "script with experiment.submit(ScriptRunConfig(...)) or 'runbridge run SCRIPT', "
                "or allow_offline=True to log to a new run")
        else:
            run = start(script_experiment_name())
        _context = run
        return run


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a copied lock may be held forever; the context object stays (a copy)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

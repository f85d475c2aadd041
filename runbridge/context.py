"""`Run.get_context()`: the run of this process (one object per process).

Inside a process started by `submit` / `runbridge run`, environment variables name the run and
its backends (see `submit.py`). Outside one, a new run is started in the configured workspace,
in an experiment named after the script, and completed when the interpreter exits normally (or
failed by an uncaught exception), so a standalone script still records everything.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RunbridgeError

if TYPE_CHECKING:
    from .run import Run

ENV_RUN_ID = "RUNBRIDGE_RUN_ID"
ENV_EXPERIMENT = "RUNBRIDGE_EXPERIMENT"

_lock = threading.Lock()
_context: "Run | None" = None


def script_experiment_name() -> str:
    """The experiment a standalone script logs to: the script's file name without suffix."""
    script = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else ""
    return Path(script).stem or "interactive"


def _attach_submitted() -> "Run | None":
    run_id = os.environ.get(ENV_RUN_ID)
    if not run_id:
        return None
    from .experiment import Experiment, Workspace
    from .run import Run

    workspace = Workspace.from_config()
    run = Run(Experiment(workspace, os.environ.get(ENV_EXPERIMENT) or script_experiment_name()), run_id)
    run._exit_policy = "flush"  # the submitting process decides the final status
    from .signals import install_sigterm

    install_sigterm()  # on SIGTERM (run.cancel()), what is buffered is written before the process dies
    return run


def get_context(allow_offline: bool = True) -> "Run":
    global _context
    with _lock:
        if _context is not None:
            return _context
        run = _attach_submitted()
        if run is None:
            if not allow_offline:
                raise RunbridgeError(
                    "Run.get_context(allow_offline=False) was called outside a submitted run; start the "
                    "script with experiment.submit(ScriptRunConfig(...)) or 'runbridge run SCRIPT', "
                    "or allow_offline=True to log to a new run")
            from .experiment import Experiment, Workspace
            from .run import Run

            workspace = Workspace.from_config()
            run = Run._start(Experiment(workspace, script_experiment_name()), run_type="script")
            run._exit_policy = "complete"
            # Processes this script starts (multiprocessing workers, launched ranks) attach to it.
            from .submit import run_environment

            os.environ.update(run_environment(run))
        _context = run
        return run


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a copied lock may be held forever; the context object stays (a copy)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""The environment variables that bind a process to a run (defined here, once): a process whose
environment names a run attaches to it in `Run.get_context()`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..backends import absolute_spec
from ..config import ENV_BACKENDS

ENV_RUN_ID = "RUNBRIDGE_RUN_ID"
ENV_EXPERIMENT = "RUNBRIDGE_EXPERIMENT"
#: Put first on a script's PYTHONPATH so ``azureml.core`` resolves to runbridge.
SHIM_DIR = Path(__file__).resolve().parent.parent / "_azureml_shim"

__all__ = ["ENV_RUN_ID", "ENV_EXPERIMENT", "ENV_BACKENDS", "SHIM_DIR", "run_environment", "without_run",
           "script_environment", "azureml_importable"]


def run_environment(run_id: str, experiment: str, specs: Sequence[str]) -> dict[str, str]:
    """The variables that make `Run.get_context()` in another process attach to the run `run_id`
    of `experiment` in the backends `specs` (relative paths made absolute)."""
    return {ENV_RUN_ID: run_id, ENV_EXPERIMENT: experiment,
            ENV_BACKENDS: ",".join(absolute_spec(spec) for spec in specs)}


def without_run(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the variables naming a run (the supervisor of a new run must not inherit
    the submitting process's own run)."""
    return {k: v for k, v in environ.items() if k not in (ENV_RUN_ID, ENV_EXPERIMENT)}


def script_environment(run_id: str, experiment: str, specs: Sequence[str], azureml_shim: bool,
                       environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a submitted script: this one, bound to the run, unbuffered output, and
    the azureml shim first on PYTHONPATH when asked."""
    env = dict(os.environ if environ is None else environ)
    env.update(run_environment(run_id, experiment, specs))
    env["PYTHONUNBUFFERED"] = "1"
    if azureml_shim:
        env["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def azureml_importable() -> bool:
    """Whether the real Azure ML SDK (``azureml.core``) is installed."""
    try:
        return importlib.util.find_spec("azureml.core") is not None
    except (ImportError, ValueError):
        return False

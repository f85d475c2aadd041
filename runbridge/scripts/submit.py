"""Submitting a script: create its run, start its supervisor process, return at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..backendset import BackendSet
from ..backends import absolute_spec
from ..records import FAILED, RUNNING, Property, now_us
from ..runcore import ExitPolicy, RunCore
from .config import ScriptRunConfig
from .environment import azureml_importable, without_run
from .names import LOG_PATH_PROPERTY

#: The supervisor's command line (``python -c`` this); waiters recognise its process by it.
SUPERVISOR_CODE = "from runbridge.scripts.supervisor import main; main()"


@dataclass
class Submission:
    """What the submitting process knows about a run it submitted."""

    core: RunCore
    process: subprocess.Popen
    local_dir: Path
    log_path: Path


def submit(store: BackendSet, experiment: str, config: ScriptRunConfig, tags: dict | None = None, *,
           foreground: bool = False, azureml_shim: bool = True, parent_id: str | None = None) -> Submission:
    """Start `config`'s script bound to a new run of `experiment` (a child of `parent_id`, if given)
    and return at once."""
    if not isinstance(config, ScriptRunConfig):
        raise TypeError(f"config must be a ScriptRunConfig, got {type(config).__name__}")
    source = Path(config.source_directory).expanduser().resolve()
    if not source.is_dir():
        raise NotADirectoryError(f"source_directory {config.source_directory!r} is not an existing folder")
    if not (source / config.script).is_file():
        raise FileNotFoundError(f"script {config.script!r} is not a file in source_directory {str(source)!r}")

    core = RunCore.start(store, experiment, outputs=None, tags=tags, run_type="script", parent_id=parent_id)
    core.own(ExitPolicy.FLUSH)  # the supervisor ends it, even after this process has gone
    local_dir = Path(tempfile.mkdtemp(prefix="runbridge-"))
    log_path = local_dir / "std_log.txt"
    log_path.touch()
    core.emit([Property(LOG_PATH_PROPERTY, str(log_path), now_us())])
    spec = {
        "run_id": core.id, "experiment": experiment,
        "backends": [absolute_spec(s) for s in store.specs],
        "source_directory": str(source), "script": config.script, "arguments": config.arguments,
        "local_dir": str(local_dir), "log_path": str(log_path), "foreground": foreground,
        "azureml_shim": bool(azureml_shim and not azureml_importable()),
    }
    spec_path = local_dir / "submission.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    out = None if foreground else open(local_dir / "supervisor.log", "ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR_CODE, str(spec_path)],
            cwd=str(source), stdin=None if foreground else subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=not foreground, env=without_run(os.environ))
    except BaseException as exc:
        core.finish(FAILED, f"could not start the runbridge supervisor: {type(exc).__name__}: {exc}")
        raise
    finally:
        if out is not None:
            out.close()
    return Submission(core, process, local_dir, log_path)


#: The run type (`get_runs(type=...)`) of a pipeline run that `runbridge run --parent NAME` made.
PIPELINE_TYPE = "azureml.PipelineRun"


def pipeline_run(store: BackendSet, experiment: str, name_or_id: str) -> tuple[RunCore, bool]:
    """The run a script step runs under (``runbridge run --parent``): the run of `experiment` whose
    id is `name_or_id`, else its newest Running pipeline run displayed as `name_or_id`, else a new
    Running pipeline run of that name. Returns it and whether it is new (then the caller ends it)."""
    if not isinstance(name_or_id, str) or not name_or_id.strip():
        raise ValueError(f"--parent must name a run (a display name or a run id), got {name_or_id!r}")
    runs = store.runs_held(experiment)
    chosen = next((info for info in runs if info.run_id == name_or_id), None)
    if chosen is None:
        named = [info for info in runs if info.display_name == name_or_id and info.status == RUNNING]
        chosen = max(named, key=lambda info: info.start_time, default=None)
    if chosen is None:
        return RunCore.start(store, experiment, display_name=name_or_id, run_type=PIPELINE_TYPE), True
    if chosen.status != RUNNING:
        raise ValueError(f"--parent {name_or_id!r} is run {chosen.run_id}, which has ended ({chosen.status}): "
                         "a step logs to a Running parent; name a new pipeline run instead")
    return RunCore.fetch(store, experiment, chosen.run_id), False

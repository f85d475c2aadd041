"""The azureml-shaped classes: `Run`, `Experiment`, `Workspace` (docs/api.md).

They refer to each other (`Run.get_context` makes an `Experiment` in a `Workspace`; an
`Experiment` makes `Run`s), so they live in this one module, thin: a `Run` wraps a `RunCore`
(`runbridge.runcore`: the run's state, buffer and backends), its metric methods come from
`RunMetrics` and its tag, property and file methods from `RunFiles`; `Workspace` is a
`BackendSet` with the azureml extras; script runs are `runbridge.scripts`, called down into.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from . import context, shapes
from .backendset import BackendSet
from .errors import RunbridgeError, StoreNotFoundError
from .records import CANCELED, COMPLETED, FAILED, RUNNING, Property, RunInfo, collector_paused
from .run_files import RunFiles
from .run_metrics import RunMetrics
from .runcore import TYPE_TAG, ExitPolicy, RunCore, new_run_id
from .scripts import waiting
from .scripts.environment import run_environment
from .scripts.names import LOG_PATH_PROPERTY, STD_LOG
from .scripts.snapshot import restore_snapshot
from .scripts.submit import Submission, submit
from .signals import install_sigterm
from .timefmt import iso_utc
from .values import check_text

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = ["Run", "Experiment", "Workspace", "TYPE_TAG", "new_run_id", "MAX_EXPERIMENT_NAME"]

MAX_EXPERIMENT_NAME = 256


class Run(RunMetrics, RunFiles):
    """One run of an experiment. `Run(experiment, run_id)` fetches an existing run."""

    def __init__(self, experiment: "Experiment", run_id: str, **_ignored: Any):
        self._bind(experiment, RunCore.fetch(experiment.workspace, experiment.name, run_id))

    @classmethod
    def from_core(cls, experiment: "Experiment", core: RunCore, submission: Submission | None = None) -> "Run":
        """The `Run` of a run core: a new run, a run built from records already read, or a
        submitted run with what its submitting process knows of it."""
        run = cls.__new__(cls)
        run._bind(experiment, core, submission)
        return run

    def _bind(self, experiment: "Experiment", core: RunCore, submission: Submission | None = None) -> None:
        self.experiment = experiment
        self._core = core
        self._names = core.names
        self._buffer = core.buffer
        self._parent: Run | None = None
        self._submission = submission

    @classmethod
    def _start(cls, experiment: "Experiment", display_name: str | None = None, parent: "Run | None" = None,
               outputs: str | None = "./outputs", tags: dict | None = None, run_type: str = "interactive",
               run_id: str | None = None) -> "Run":
        """Create a new Running run on every backend of the experiment's workspace."""
        core = RunCore.start(experiment.workspace, experiment.name, display_name=display_name,
                             parent_id=parent.id if parent else None, outputs=outputs, tags=tags,
                             run_type=run_type, run_id=run_id)
        run = cls.from_core(experiment, core)
        run._parent = parent
        return run

    @classmethod
    def get_context(cls, allow_offline: bool = True, **_ignored: Any) -> "Run":
        """The run of this process: the submitted run inside `submit`/`runbridge run`, else a new
        run in the configured workspace named after the script (completed at normal exit)."""
        return context.get_context(allow_offline, _attach_submitted, _start_standalone)

    # -- identity ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._core.info.run_id

    @property
    def display_name(self) -> str:
        return self._core.info.display_name or self._core.info.run_id

    @property
    def status(self) -> str:
        return self._core.info.status

    @property
    def number(self) -> int:
        """1-based position of the run among its experiment's runs, oldest first."""
        runs = self.experiment.workspace.runs_held(self.experiment.name)
        ids = [r.run_id for r in sorted(runs, key=lambda r: r.start_time)]
        return ids.index(self.id) + 1 if self.id in ids else 0

    @property
    def parent(self) -> "Run | None":
        if self._core.info.parent_id is None:
            return None
        if self._parent is None:
            self._parent = Run(self.experiment, self._core.info.parent_id)
        return self._parent

    def __repr__(self) -> str:
        return f"Run(experiment={self.experiment.name!r}, id={self.id!r}, status={self.status!r})"

    # -- status ---------------------------------------------------------------------------------
    def get_status(self) -> str:
        """The status now; a Running run is re-read (another process, e.g. a submitted script's
        supervisor, may have ended it)."""
        core = self._core
        if core.info.status == RUNNING:
            try:
                if core.refresh().status == RUNNING and not core.owned_here() and \
                        core.presumed_dead(core.read_records()):
                    return FAILED
            except RunbridgeError:  # the backends cannot say: what this process knows
                pass
        return core.info.status

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True) -> dict[str, Any]:
        """Block until the run ends (streaming its output with `show_output`), print a summary,
        and return `get_details()`; raises `RunFailedError` if it failed and `raise_on_error`."""
        return waiting.wait_for_completion(self._core, self.get_details, self._submission,
                                           show_output=show_output, raise_on_error=raise_on_error)

    def restore_snapshot(self, snapshot_id: str | None = None, path: str | os.PathLike | None = None) -> str:
        """Copy the snapshot of a submitted run's source folder (a zip) to `path`; returns its path."""
        return restore_snapshot(self._core, path)

    def complete(self) -> None:
        """Flush, upload the outputs folder, and mark the run Completed."""
        self._core.finish(COMPLETED)

    def fail(self, error_details: Any = None, error_code: str | None = None) -> None:
        """Mark the run Failed, keeping `error_details` (an exception or a message)."""
        self._core.finish(FAILED, error_details)

    def cancel(self) -> None:
        """Mark the run Canceled."""
        self._core.finish(CANCELED)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            self.complete()
        else:
            self.fail(exc)
        return False

    def get_details(self) -> dict[str, Any]:
        """runId, status, startTimeUtc, endTimeUtc (once ended), properties, tags, logFiles, error."""
        records = self._core.read_records()
        info = shapes.run_info(records) or self._core.info
        dead = self._core.presumed_dead(records)
        if dead:  # shown, not written: the store keeps what the process left
            info = info._replace(status=FAILED, error=dead)
        details: dict[str, Any] = {"runId": info.run_id, "displayName": info.display_name or info.run_id,
                                   "status": info.status, "startTimeUtc": iso_utc(info.start_time)}
        if info.end_time is not None:
            details["endTimeUtc"] = iso_utc(info.end_time)
        details["properties"] = shapes.fold_properties(records)
        details["tags"] = shapes.fold_tags(records)
        details["logFiles"] = {n: shapes.locator(info.run_id, n) for n in shapes.file_names(records)
                               if n.startswith(("user_logs/", "logs/", "azureml-logs/"))}
        if info.status == RUNNING:  # a submitted script's output, live, in a local file
            live = [r.value for r in records if type(r) is Property and r.key == LOG_PATH_PROPERTY]
            if live and os.path.exists(live[0]):
                details["logFiles"].setdefault(STD_LOG, live[0])
        if info.status == FAILED:
            details["error"] = {"error": {"code": "UserError", "message": info.error or ""}}
        return details

    def get_portal_url(self) -> str | None:
        """The first backend's own viewer address for this run."""
        return self._core.url()

    def process_environment(self) -> dict[str, str]:
        """The environment variables (`RUNBRIDGE_RUN_ID`, `_EXPERIMENT`, `_BACKENDS`) that make
        `Run.get_context()` in another process attach to this run: give them to the ranks a
        launcher starts, or to any worker, so that every process logs into this one run."""
        return run_environment(self.id, self.experiment.name, self.experiment.workspace.specs)

    # -- looking at it ---------------------------------------------------------------------------
    def plot(self, name: str | None = None) -> "Figure":
        """A matplotlib figure of the run's metrics, one panel each (or of metric `name` alone),
        drawn by the viewer's rules (`runbridge.charts`): values, lines over steps, tables, images."""
        from . import charts, plots

        found = charts.charts(self._core.read_records())
        if name is not None:
            found = [c for c in found if c.name == name]
            if not found:
                raise ValueError(f"name: run {self.id} has no metric {name!r}")
        return plots.run_figure(found, load=self._file_bytes)

    def _file_bytes(self, name: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="runbridge-plot-") as tmp:
            target = Path(tmp) / "file"
            return target.read_bytes() if self._core.fetch_file(name, target) and target.is_file() else None

    def _repr_html_(self) -> str | None:
        """The run page, inline in Jupyter (the viewer's; None without the ui extra, so IPython
        shows the plain repr). The viewer sits above this layer: it is imported by name, here only."""
        try:
            widgets = importlib.import_module("runbridge.viewer.widgets")
            return widgets.html(self)
        except ImportError:
            return None

    # -- children -------------------------------------------------------------------------------
    def child_run(self, name: str | None = None, run_id: str | None = None, outputs: str | None = None) -> "Run":
        """Start a child run of the same experiment (`parent` is this run)."""
        return Run._start(self.experiment, display_name=name, parent=self, outputs=outputs,
                          run_type="child", run_id=run_id)

    def create_children(self, count: int | None = None, tag_key: str | None = None,
                        tag_values: Sequence[str] | None = None) -> list["Run"]:
        """Start `count` children, or one per tag value (tagged `tag_key`=value)."""
        if tag_values is not None:
            if tag_key is None:
                raise ValueError("tag_values needs tag_key")
            return [Run._start(self.experiment, parent=self, outputs=None, run_type="child",
                               tags={tag_key: value}) for value in tag_values]
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int (or give tag_key and tag_values), got {count!r}")
        return [self.child_run() for _ in range(count)]

    def get_children(self, recursive: bool = False, **_ignored: Any) -> list["Run"]:
        """Child runs, oldest first; with `recursive`, every descendant."""
        runs = self.experiment.workspace.runs_held(self.experiment.name)
        by_parent: dict[str, list[RunInfo]] = {}
        for info in sorted(runs, key=lambda r: r.start_time):
            if info.parent_id:
                by_parent.setdefault(info.parent_id, []).append(info)
        out, frontier = [], [self.id]
        while frontier:
            parent_id = frontier.pop(0)
            for info in by_parent.get(parent_id, []):
                out.append(Run.from_core(self.experiment, RunCore(self.experiment.workspace, info)))
                if recursive:
                    frontier.append(info.run_id)
        return out


# -- Run.get_context: how this process's run is made (the per-process logic is `runbridge.context`)
def _attach_submitted(run_id: str, experiment: str) -> Run:
    run = Run(Experiment(Workspace.from_config(), experiment), run_id)
    run._core.exit_policy = ExitPolicy.FLUSH  # the submitting process decides the final status
    install_sigterm()  # on SIGTERM (run.cancel()), what is buffered is written before the process dies
    return run


def _start_standalone(experiment: str) -> Run:
    run = Run._start(Experiment(Workspace.from_config(), experiment), run_type="script")
    run._core.own(ExitPolicy.COMPLETE)
    # Processes this script starts (multiprocessing workers, launched ranks) attach to it.
    os.environ.update(run_environment(run.id, experiment, run.experiment.workspace.specs))
    return run


class Workspace(BackendSet):
    """The backends every run writes to; the first one listed answers reads."""

    @property
    def experiments(self) -> dict[str, "Experiment"]:
        """The experiments the first backend holds, by name (none while its store does not exist)."""
        try:
            names = self.backends[0].list_experiments()
        except StoreNotFoundError:
            names = []
        return {name: Experiment(self, name) for name in names}


class Experiment:
    """Runs grouped under a name (get or create)."""

    def __init__(self, workspace: Workspace, name: str, **_ignored: Any):
        if not isinstance(workspace, Workspace):
            raise TypeError(f"workspace must be a runbridge Workspace, got {type(workspace).__name__}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        if len(name) > MAX_EXPERIMENT_NAME:
            raise ValueError(f"name is {len(name)} characters; experiment names have at most {MAX_EXPERIMENT_NAME}")
        check_text(name, "name")
        self.workspace = workspace
        self.name = name

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Experiment) and other.name == self.name and other.workspace is self.workspace

    def __hash__(self) -> int:
        return hash(self.name)

    @staticmethod
    def list(workspace: Workspace, **_ignored: Any) -> list["Experiment"]:
        """Every experiment the workspace's first backend holds."""
        return list(workspace.experiments.values())

    def start_logging(self, *args: Any, display_name: str | None = None, outputs: str | None = "./outputs",
                      snapshot_directory: str | None = None, tags: dict | None = None, **_ignored: Any) -> Run:
        """Start an interactive run, already Running."""
        return Run._start(self, display_name=display_name, outputs=outputs, tags=tags)

    def submit(self, config: Any, tags: dict | None = None, **_ignored: Any) -> Run:
        """Run a `ScriptRunConfig` as a local subprocess bound to a new run; returns it at once."""
        submission = submit(self.workspace, self.name, config, tags=tags)
        return Run.from_core(self, submission.core, submission)

    def get_runs(self, type: str | None = None, tags: Any = None, properties: Any = None,
                 include_children: bool = False) -> Iterator[Run]:
        """The experiment's runs, newest first; `tags`/`properties` filter by "key" or {"key": value}.
        Each run is opened from its header alone (its records are read when first needed)."""
        if type is None and tags is None and properties is None:
            runs = self.workspace.runs_held(self.name)
        else:
            runs = []
            for summary in self.workspace.summaries(self.name):
                if type is not None and summary.tags.get(TYPE_TAG) != type:
                    continue
                if _matches(summary.tags, tags) and _matches(summary.properties, properties):
                    runs.append(summary.info)
        with collector_paused():  # thousands of small objects, none of them garbage yet
            found = [Run.from_core(self, RunCore(self.workspace, info)) for info in runs
                     if include_children or not info.parent_id]
        yield from found

    def plot(self, name: str, runs: "Sequence[Run] | None" = None) -> "Figure":
        """A matplotlib figure of metric `name` over `runs` (default: the experiment's runs): a line
        per run, or a bar per run for single values."""
        from . import charts, plots

        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a metric name (a non-empty str), got {name!r}")
        runs = list(self.get_runs()) if runs is None else list(runs)
        if not all(isinstance(r, Run) for r in runs):
            raise TypeError("runs must be runbridge Runs")
        series = [(f"{run.display_name} ({run.id})" if run.display_name != run.id else run.id, chart)
                  for run in runs for chart in charts.charts(run._core.read_records()) if chart.name == name]
        if not series:
            raise ValueError(f"name: no run of experiment {self.name!r} has a metric {name!r}")
        return plots.compare_figure(name, series)

    def get_runs_frame(self, include_children: bool = True) -> "pandas.DataFrame":
        """One row per run: status, times, tags, and last/min/max of each numeric metric."""
        from .frames import runs_frame  # pandas, loaded on first use

        return runs_frame(self.workspace.summaries(self.name, include_children))


def _matches(values: dict[str, Any], wanted: Any) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return wanted in values
    if isinstance(wanted, dict):
        return all(k in values and values[k] == v for k, v in wanted.items())
    return all(k in values for k in wanted)

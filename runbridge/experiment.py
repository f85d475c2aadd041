"""`Workspace` (the set of configured backends) and `Experiment` (runs grouped by name)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from .backends import Backend, open_backend
from .fanout import FanOut
from .config import resolve_backends
from .errors import RunNotFoundError, RunbridgeError, StoreNotFoundError
from .records import Record, RunInfo, in_logging_order
from .values import check_text

if TYPE_CHECKING:
    import pandas

    from .run import Run

MAX_EXPERIMENT_NAME = 256
T = TypeVar("T")
# Backends a forked child inherited: never used nor closed there (their connections are the parent's).
_INHERITED: list = []


class Workspace:
    """The backends every run writes to; the first one listed answers reads."""

    def __init__(self, backends: list[str] | tuple[str, ...] | str | None = None, **_ignored: Any):
        self.specs: list[str] = resolve_backends(backends)
        self.backends: list[Backend] = [open_backend(spec) for spec in self.specs]

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, **_ignored: Any) -> "Workspace":
        """RUNBRIDGE_BACKENDS, else runbridge.toml / [tool.runbridge] (searched upward from `path`
        or the working folder), else the built-in SQLite store in .runbridge/."""
        workspace = cls.__new__(cls)
        workspace.specs = resolve_backends(None, path)
        workspace.backends = [open_backend(spec) for spec in workspace.specs]
        return workspace

    @property
    def backends(self) -> list[Backend]:
        """The opened backends; a forked child opens its own (connections do not survive fork)."""
        if self._pid != os.getpid():
            _INHERITED.append(self._backends)
            self.backends = [open_backend(spec) for spec in self.specs]
        return self._backends

    @backends.setter
    def backends(self, value: list[Backend]) -> None:
        self._backends = list(value)
        self._fan_out = FanOut(self._backends)
        self._pid = os.getpid()

    @property
    def fan_out(self) -> FanOut:
        """Where runs write: every backend, each failure isolated (see `runbridge.fanout`)."""
        self.backends  # noqa: B018 - reopens them (and a fresh FanOut) in a forked child
        return self._fan_out

    def __repr__(self) -> str:
        return f"Workspace(backends={self.specs!r})"

    @property
    def experiments(self) -> dict[str, "Experiment"]:
        """The experiments the first backend holds, by name (none while its store does not exist)."""
        try:
            names = self.backends[0].list_experiments()
        except StoreNotFoundError:
            names = []
        return {name: Experiment(self, name) for name in names}

    # -- reads shared by Run, Experiment and the command line --------------------------------
    def first_answer(self, call: Callable[[Backend], T | None], run_id: str | None = None) -> T | None:
        """`call(backend)` on each backend in order until one answers (returns non-None). A backend
        that raises (a server that is down) or was disabled for `run_id` is skipped; if none
        answers, the first error is raised, else None is returned."""
        error: RunbridgeError | None = None
        for backend in self.backends:
            if run_id is not None and self._fan_out.failure(backend, run_id):
                continue
            try:
                answer = call(backend)
            except RunbridgeError as exc:
                error = error or exc
                continue
            if answer is not None:
                return answer
        if error is not None:
            raise error
        return None

    def read_run(self, experiment: str, run_id: str) -> tuple[RunInfo, list[Record]]:
        """The run's records from the first backend that holds it and answers."""
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run_id must be a non-empty str, got {run_id!r}")
        records = self.first_answer(lambda backend: backend.read(experiment, run_id), run_id)
        if records is None:
            raise RunNotFoundError(f"run_id {run_id!r} is not a run of experiment {experiment!r} in "
                                   f"backends {', '.join(self.specs)}")
        info = records[0]
        if type(info) is not RunInfo:
            raise RunbridgeError(f"a backend of {', '.join(self.specs)} returned records without a RunInfo first")
        return info, in_logging_order(records)

    def find_run(self, run_id: str) -> RunInfo:
        """A run by its id alone (its experiment found for you), from the first backend that answers."""
        info = self.first_answer(lambda backend: next(
            (info for info in backend.list_runs(None) if info.run_id == run_id), None))
        if info is None:
            raise RunNotFoundError(f"no run {run_id!r} in {', '.join(self.specs)} "
                                   "(list them with: runbridge runs)")
        return info

    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        """The first backend's runs; `StoreNotFoundError` if its store does not exist."""
        return self.backends[0].list_runs(experiment)

    def runs_held(self, experiment: str | None) -> list[RunInfo]:
        """Like `list_runs`, but a store nothing has written to yet holds no runs (the SDK's view:
        a new experiment has no runs)."""
        try:
            return self.list_runs(experiment)
        except StoreNotFoundError:
            return []

    def run_url(self, run: RunInfo) -> str | None:
        for backend in self.backends:
            try:
                url = backend.run_url(run)
            except StoreNotFoundError:  # a backend that failed before its store was created
                continue
            if url:
                return url
        return None

    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool:
        for backend in self.backends:
            if self._fan_out.failure(backend, run.run_id):
                continue
            try:
                if backend.fetch_file(run, name, destination):
                    return True
            except StoreNotFoundError:
                continue
        return False


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
                      snapshot_directory: str | None = None, tags: dict | None = None, **_ignored: Any) -> "Run":
        """Start an interactive run, already Running."""
        from .run import Run

        return Run._start(self, display_name=display_name, outputs=outputs, tags=tags)

    def submit(self, config: Any, tags: dict | None = None, **_ignored: Any) -> "Run":
        """Run a `ScriptRunConfig` as a local subprocess bound to a new run; returns it at once."""
        from .submit import submit

        return submit(self, config, tags=tags)

    def get_runs(self, type: str | None = None, tags: Any = None, properties: Any = None,
                 include_children: bool = False) -> Iterator["Run"]:
        """The experiment's runs, newest first; `tags`/`properties` filter by "key" or {"key": value}."""
        from .run import TYPE_TAG, Run
        from .shapes import fold_properties, fold_tags

        for info in self.workspace.runs_held(self.name):
            if info.parent_id and not include_children:
                continue
            _, records = self.workspace.read_run(self.name, info.run_id)
            if type is not None or tags is not None or properties is not None:
                all_tags = fold_tags(records, include_reserved=True)
                if type is not None and all_tags.get(TYPE_TAG) != type:
                    continue
                if not _matches(all_tags, tags) or not _matches(fold_properties(records), properties):
                    continue
            yield Run._from_records(self, records)

    def get_runs_frame(self, include_children: bool = True) -> "pandas.DataFrame":
        """One row per run: status, times, tags, and last/min/max of each numeric metric."""
        from .frames import runs_frame

        runs = [self.workspace.read_run(self.name, info.run_id)[1]
                for info in self.workspace.runs_held(self.name)
                if include_children or not info.parent_id]
        return runs_frame(runs)


def _matches(values: dict[str, Any], wanted: Any) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return wanted in values
    if isinstance(wanted, dict):
        return all(k in values and values[k] == v for k, v in wanted.items())
    return all(k in values for k in wanted)

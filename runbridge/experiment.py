"""`Workspace` (the set of configured backends) and `Experiment` (runs grouped by name)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator

from .backends import Backend, open_backend
from .config import resolve_backends
from .errors import RunNotFoundError, RunbridgeError, StoreNotFoundError
from .records import Record, RunInfo
from .values import check_text

if TYPE_CHECKING:
    import pandas

    from .run import Run

MAX_EXPERIMENT_NAME = 256
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
            self._backends = [open_backend(spec) for spec in self.specs]
            self._pid = os.getpid()
        return self._backends

    @backends.setter
    def backends(self, value: list[Backend]) -> None:
        self._backends = list(value)
        self._pid = os.getpid()

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

    # -- reads shared by Run and Experiment -------------------------------------------------
    def read_run(self, experiment: str, run_id: str) -> tuple[RunInfo, list[Record]]:
        """The run's records from the first backend that holds it (and is not failing for it)."""
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run_id must be a non-empty str, got {run_id!r}")
        missing: list[StoreNotFoundError] = []
        for backend in self.backends:
            if backend.failed(run_id):
                continue
            try:
                records = backend.read(experiment, run_id)
            except StoreNotFoundError as exc:  # another backend may hold the run
                missing.append(exc)
                continue
            if records is not None:
                info = records[0]
                if type(info) is not RunInfo:
                    raise RunbridgeError(f"backend {backend.spec} returned records without a RunInfo first")
                return info, records
        if missing and len(missing) == len(self.backends):
            raise missing[0]
        raise RunNotFoundError(f"run_id {run_id!r} is not a run of experiment {experiment!r} in "
                               f"backends {', '.join(self.specs)}")

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
            if backend.failed(run.run_id):
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

"""`BackendSet`: the opened backends of a workspace, as the run core uses them: every write
fanned out to all of them (`FanOut`), every read asked of the first one that answers.

`runbridge.run.Workspace` is this plus the azureml-shaped extras (`experiments`); the run
core and the script runner work on a `BackendSet` so that they sit below the azureml classes.
"""

from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

from .backends import Backend, open_backend
from .config import resolve_backends
from .errors import RunNotFoundError, RunbridgeError, StoreNotFoundError
from .fanout import FanOut
from . import shapes
from .records import Record, RunColumns, RunInfo, RunSummary, in_logging_order

T = TypeVar("T")
S = TypeVar("S", bound="BackendSet")
# Backends a forked child inherited: never used nor closed there (their connections are the parent's).
_INHERITED: list = []


class BackendSet:
    """The backends every run writes to; the first one listed answers reads."""

    def __init__(self, backends: list[str] | tuple[str, ...] | str | None = None, **_ignored: Any):
        self.specs: list[str] = resolve_backends(backends)
        self.backends: list[Backend] = [open_backend(spec) for spec in self.specs]

    @classmethod
    def from_config(cls: type[S], path: str | os.PathLike | None = None, **_ignored: Any) -> S:
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
        return f"{type(self).__name__}(backends={self.specs!r})"

    # -- reads shared by the run core, the azureml classes and the command line ------------------
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
        found = self.first_answer(lambda backend: backend.read(experiment, run_id), run_id)
        if found is None:
            raise self._not_found(experiment, run_id)
        return found.info, in_logging_order(found.all())

    def _not_found(self, experiment: str, run_id: str) -> RunNotFoundError:
        return RunNotFoundError(f"run_id {run_id!r} is not a run of experiment {experiment!r} in "
                                f"backends {', '.join(self.specs)}")

    def read_info(self, experiment: str, run_id: str) -> RunInfo:
        """The run's current `RunInfo` from the first backend that holds it, without its records."""
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run_id must be a non-empty str, got {run_id!r}")
        info = self.first_answer(lambda backend: backend.read_info(experiment, run_id), run_id)
        if info is None:
            raise self._not_found(experiment, run_id)
        return info

    def read_metrics(self, experiment: str, run_id: str, name: str | None) -> RunColumns | None:
        """The run's metrics as columns from the first backend that holds it, or None when that
        backend reads only whole runs (use `read_run`)."""
        def call(backend: Backend) -> RunColumns | bool | None:
            return backend.read_metrics(experiment, run_id, name) if backend.implements("read_metrics") else False

        found = self.first_answer(call, run_id)
        if found is None:
            raise self._not_found(experiment, run_id)
        return found or None

    def summaries(self, experiment: str | None, include_children: bool = True, missing_ok: bool = True,
                  limit: int | None = None) -> list[RunSummary]:
        """One `RunSummary` per run held for `experiment` (all if None), newest first, at most
        `limit`: the first backend's `summarize_runs`, else computed from one `read` per run. A
        store nothing has written to yet holds none (`missing_ok`) or raises `StoreNotFoundError`."""
        try:
            found = self.backends[0].summarize_runs(experiment)
            if found is None:
                found = []
                for info in self.list_runs(experiment):
                    if limit is not None and len(found) >= limit:
                        break
                    if include_children or not info.parent_id:
                        got = self.backends[0].read(info.experiment, info.run_id)
                        records = in_logging_order(got.all()) if got is not None else [info]
                        found.append(shapes.summarize(records))
        except StoreNotFoundError:
            if not missing_ok:
                raise
            return []
        return [s for s in found if include_children or not s.info.parent_id][:limit]

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
        """The first link a backend holding the run gives; backends that failed for the run, or
        fail now (a server that is down), are passed over: a link never fails a run."""
        for backend in self.backends:
            if self._fan_out.failure(backend, run.run_id):
                continue
            try:
                url = backend.run_url(run)
            except (RunbridgeError, OSError):  # no store yet, or a server that does not answer
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

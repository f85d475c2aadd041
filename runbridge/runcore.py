"""`RunCore`: one run's state, write buffer and backends, below the azureml-shaped `Run`.

The core knows what a run holds (its `RunInfo`, the kind and next `seq` of each metric name for
this writer, table columns, file names, properties), queues records in the run's `WriteBuffer`,
writes them through the backends' fan-out, reads the run back and ends it. It refuses only what
its state decides (a name reused for another kind, a file name taken, a property changed);
checking the arguments a user typed is `Run`'s job. `Run` wraps one core thinly; the script
runner (`runbridge.scripts`) works on cores directly.

`names`, `buffer` and `writer` are shared with `Run.log`, the hot path, which does its per-call
work inline; `names` is only ever changed in place.
"""

from __future__ import annotations

import enum
import os
import re
import sys
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Sequence

from . import liveness, shapes
from .backendset import BackendSet
from .buffer import WriteBuffer, track_unended, unended, untrack
from .errors import FileExistsInRunError, PropertyChangeError, RunEndedError
from .media import folder_files, read_stream, safe_name, sha256_of
from .records import (COMPLETED, FAILED, FINAL_STATUSES, RESERVED_PREFIX, RUNNING, File, Image, Property,
                      Record, Row, RunColumns, RunInfo, Tag, new_writer_id, now_us)
from .values import check_name, check_run_id, check_text, tag_value

#: The kinds of metric a name can hold (one kind per name).
#: A metric name's kind, after its records' type (`Image`: images and JSON metrics alike).
SCALAR, TABLE, IMAGE = "scalar", "table", "image"
#: Reserved tag holding the kind of run (interactive, script, child), for get_runs(type=...).
TYPE_TAG = RESERVED_PREFIX + "type"


class ExitPolicy(enum.Enum):
    """What the exit hook does with a run this process owns and did not end."""

    FAIL = "fail"  #: end it Failed ("the process exited without ending the run")
    COMPLETE = "complete"  #: end it Completed at a normal exit, Failed after an uncaught exception
    FLUSH = "flush"  #: only write what is buffered: another process ends the run


class NameState:
    """What this run knows of one metric name: its kind, the next `seq` this writer gives it,
    and (tables) its columns."""

    __slots__ = ("kind", "next_seq", "columns")

    def __init__(self, kind: str, columns: frozenset | None = None):
        self.kind = kind
        self.next_seq = 0
        self.columns = columns


def new_run_id(experiment_name: str) -> str:
    """An azureml-style id: ``<experiment>_<unix seconds>_<8 hex>``, safe as a folder name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name).strip("._")[:64] or "run"
    return f"{slug}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


def error_text(error: Any) -> str | None:
    """An error as the run keeps it: ``Type: message`` for an exception, else its text."""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return None if error is None else str(error)


def tag_records(tags: dict | None, t: int, argument: str = "tags") -> list[Tag]:
    """Checked `Tag` records for a user's dict of tags (None: no tags)."""
    if tags is None:
        return []
    if not isinstance(tags, dict):
        raise TypeError(f"{argument} must be a dict, got {type(tags).__name__}")
    return [Tag(check_name(k, f"{argument} key"), tag_value(v, f"{argument}[{k!r}]"), t) for k, v in tags.items()]


def file_record(name: str, path_or_stream: Any, argument: str) -> File:
    """A `File` record for a path (read at write time) or a binary stream (read now)."""
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = Path(path_or_stream)
        if not path.is_file():
            raise FileNotFoundError(f"{argument} {str(path_or_stream)!r} is not an existing file")
        size, digest = sha256_of(path=path)
        return File(name, size, digest, now_us(), source=str(path.resolve()))
    if hasattr(path_or_stream, "read"):
        data = read_stream(path_or_stream, argument)
        size, digest = sha256_of(data=data)
        return File(name, size, digest, now_us(), data=data)
    raise TypeError(f"{argument} must be a file path or a binary stream, got {type(path_or_stream).__name__}")


class RunCore:
    """One run as this process writes and reads it (see the module docstring)."""

    def __init__(self, store: BackendSet, info: RunInfo, owned: bool = False, outputs: str | None = None):
        self.store = store
        self.info = info
        #: Folder uploaded as ``outputs/...`` when the run completes (None: none).
        self.outputs = outputs
        self.names: dict[str, NameState] = {}
        #: This object's writer id: its records are numbered per name from 0, unique with the id.
        self.writer = new_writer_id()
        self.properties: dict[str, str | None] = {}
        self.file_names: set[str] = set()
        self.buffer = WriteBuffer(self._write)
        self.exit_policy = ExitPolicy.FAIL
        self._state_loaded = owned  # a run this process created has no earlier state
        _LIVE_CORES.add(self)

    def renew_writer(self) -> None:
        """Become a new writer (a forked child: the parent's id and numbering are the parent's)."""
        self.writer = new_writer_id()
        for state in self.names.values():
            state.next_seq = 0

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def start(cls, store: BackendSet, experiment: str, display_name: str | None = None,
              parent_id: str | None = None, outputs: str | None = None, tags: dict | None = None,
              run_type: str = "interactive", run_id: str | None = None) -> "RunCore":
        """Create a new Running run on every backend; this process owns it (ended at exit)."""
        if display_name is not None:
            if not isinstance(display_name, str):
                raise TypeError(f"display_name must be a str or None, got {type(display_name).__name__}")
            check_text(display_name, "display_name")
        if run_id is not None:
            check_run_id(run_id)
        t = now_us()
        tagged = tag_records(tags, t)
        info = RunInfo(run_id=run_id or new_run_id(experiment), experiment=experiment, display_name=display_name,
                       parent_id=parent_id, status=RUNNING, start_time=t)
        core = cls(store, info, owned=True, outputs=outputs)
        store.fan_out.start_run(info)
        store.fan_out.require_one_started(info)
        core.own(ExitPolicy.FAIL)
        core.emit([Tag(TYPE_TAG, run_type, t), liveness.heartbeat()] + tagged)
        return core

    @classmethod
    def fetch(cls, store: BackendSet, experiment: str, run_id: str) -> "RunCore":
        """An existing run, its header read from the first backend that holds it (its records are
        read when first needed)."""
        return cls(store, store.read_info(experiment, run_id))

    def own(self, policy: ExitPolicy) -> None:
        """This process answers for the run: the exit hook applies `policy` if it is still running."""
        self.exit_policy = policy
        track_unended(self)

    @property
    def id(self) -> str:
        return self.info.run_id

    # -- what the run holds ---------------------------------------------------------------------
    def absorb(self, records: Sequence[Record]) -> None:
        """Learn the names (and their kinds and columns), properties and files already in the run.
        Sequence numbers are this writer's own: other writers' records do not move them."""
        for rec in records:
            kind = type(rec)
            if kind is Property:
                self.properties.setdefault(rec.key, rec.value)
            elif kind is File:
                self.file_names.add(rec.name)
            elif kind is RunInfo:
                self.info = rec
            else:
                name = getattr(rec, "name", None)
                if name is None:
                    continue
                if kind is Image:
                    self.file_names.add(rec.file_name)
                state = self.names.get(name)
                if state is None:
                    state = self.names[name] = NameState(
                        TABLE if kind is Row else IMAGE if kind is Image else SCALAR)
                if rec.writer == self.writer:
                    state.next_seq = max(state.next_seq, rec.seq + 1)
                if kind is Row and state.columns is None:
                    state.columns = frozenset(c for c, _ in rec.cells)
        self._state_loaded = True

    def load_state(self) -> None:
        """Read the run once to learn what earlier writers put in it (a fetched run only)."""
        if not self._state_loaded:
            self.absorb(self.read_records())

    def reload(self) -> None:
        """Read the run's status and contents again: other processes (a script and its workers)
        may have ended it, tagged it or uploaded files since."""
        self.refresh()
        self._state_loaded = False
        self.load_state()

    def check_open(self) -> None:
        """Raise `RunEndedError` once the run has ended (metrics can no longer be logged)."""
        if self.info.status in FINAL_STATUSES:
            raise RunEndedError(
                f"run {self.id} has ended ({self.info.status}); metrics can no longer be logged "
                "(tags and properties still can)")

    def claim(self, name: str, kind: str, count: int = 1, columns: frozenset | None = None) -> int:
        """Reserve `count` sequence numbers of `name` and return the first, refusing a name
        already used for another kind (or a table's other columns). Nothing is reserved on error."""
        state = self.names.get(name)
        if state is None:
            self.load_state()
            state = self.names.get(name)
        if state is None:
            state = self.names[name] = NameState(kind, columns)
        elif state.kind != kind:
            raise ValueError(f"name {name!r} already holds a {state.kind} metric in run {self.id}; "
                             f"use another name for this {kind} metric")
        elif columns is not None and state.columns is None:
            state.columns = columns
        elif columns is not None and state.columns != columns:
            raise ValueError(f"columns of {name!r} must stay {sorted(state.columns)}, got {sorted(columns)} "
                             "(a table keeps one set of columns)")
        seq = state.next_seq
        state.next_seq = seq + count
        return seq

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, records: Sequence[Record]) -> None:
        self.store.fan_out.write(self.info, records)

    def emit(self, records: Sequence[Record]) -> None:
        """Queue records after whatever is buffered (keeping the order) and wake the writer. Wait
        for the write for files read from a path (the file may change once the call returns), and
        for a run this process is not running (a run fetched by id, an ended run: a tag set there
        is read back at once, perhaps by another process, and nothing is on a training hot path)."""
        if any(type(r) is File for r in records) or not self.owned_here():
            self.buffer.flush(then=records)
        else:
            self.buffer.add(records, wake=True)

    def flush(self) -> None:
        """Write everything this process has buffered for the run now (every object of it here:
        `Run(experiment, run.id)` reads what `run` logged a moment before)."""
        for core in [c for c in list(_LIVE_CORES) if c is not self and c.info.run_id == self.info.run_id]:
            core.buffer.flush()
        self.buffer.flush()

    def _unique_file_name(self, wanted: str) -> str:
        self.load_state()
        if wanted not in self.file_names:
            return wanted
        stem, dot, ext = wanted.rpartition(".")
        if not dot or "/" in ext:
            stem, ext = wanted, ""
        n = 1
        while True:
            candidate = f"{stem}_{n}.{ext}" if ext else f"{stem}_{n}"
            if candidate not in self.file_names:
                return candidate
            n += 1

    def add_file_metric(self, name: str, file_name: str, data: bytes, media_type: str, description: str,
                        step: int | None = None) -> None:
        """Write an image or JSON metric under `name`, its file renamed if the name is taken."""
        self.check_open()
        file_name = self._unique_file_name(file_name)
        seq = self.claim(name, IMAGE)
        self.file_names.add(file_name)
        self.emit([Image(name, seq, file_name, media_type, now_us(), step, data, description, self.writer)])

    def add_properties(self, properties: dict[str, str | None]) -> None:
        """Add checked properties; they are add-only, so changing an existing one raises."""
        self.load_state()
        t = now_us()
        records = []
        for key, value in properties.items():
            if key in self.properties:
                if self.properties[key] != value:
                    raise PropertyChangeError(
                        f"property {key!r} is already {self.properties[key]!r} and properties are add-only; "
                        f"it cannot become {value!r}")
                continue
            records.append(Property(key, value, t))
        self.emit(records)
        for rec in records:
            self.properties[rec.key] = rec.value

    def upload(self, pairs: list[tuple[str, Any]], argument: str = "path_or_stream") -> None:
        """Store each (name, path or stream) as a run file. Every pair is checked first; nothing
        is written on error. Run files are write-once."""
        self.load_state()
        records, seen = [], set()
        for name, source in pairs:
            clean = safe_name(name, "name")
            if clean.startswith(RESERVED_PREFIX):
                raise ValueError(f"name {name!r} uses the reserved prefix {RESERVED_PREFIX!r}")
            if clean in self.file_names or clean in seen:
                raise FileExistsInRunError(
                    f"name {clean!r} is already a file of run {self.id}; run files are write-once")
            seen.add(clean)
            records.append(file_record(clean, source, argument))
        self.emit(records)
        self.file_names.update(seen)

    # -- reading ----------------------------------------------------------------------------------
    def read_records(self) -> list[Record]:
        """Every record of the run, as the first backend holding it reads it (after a flush)."""
        self.flush()
        _, records = self.store.read_run(self.info.experiment, self.id)
        return records

    def read_metrics(self, name: str | None) -> RunColumns | None:
        """The run's metrics as columns (after a flush); None when its backend reads whole runs."""
        self.flush()
        return self.store.read_metrics(self.info.experiment, self.id, name)

    def current_info(self) -> RunInfo:
        """The run's lifecycle as the backends hold it now (another process may have ended it)."""
        return self.store.read_info(self.info.experiment, self.id)

    def refresh(self) -> RunInfo:
        """Take the backends' view of the run's lifecycle as this object's, and return it."""
        self.info = self.current_info()
        return self.info

    def property_value(self, key: str) -> str | None:
        """A property as the backends hold it now (without flushing: for another process's run)."""
        _, records = self.store.read_run(self.info.experiment, self.id)
        for rec in records:
            if type(rec) is Property and rec.key == key:
                return rec.value
        return None

    def fetch_file(self, name: str, destination: str | os.PathLike) -> bool:
        """Copy run file `name` to `destination`; False if no backend holds it."""
        self.flush()
        return self.store.fetch_file(self.info, name, str(destination))

    def owned_here(self) -> bool:
        """True while this process started the run and has not ended it (it is alive, then)."""
        return any(run is self for run in unended())

    def presumed_dead(self, records: Sequence[Record]) -> str | None:
        """Why a Running run another process writes is presumed dead (stale heartbeat), or None."""
        if self.owned_here():
            return None
        return liveness.presumed_dead(shapes.run_info(records) or self.info, records)

    def url(self) -> str | None:
        """The first backend's own viewer address for this run."""
        return self.store.run_url(self.info)

    # -- ending -----------------------------------------------------------------------------------
    def end(self, status: str, error: str | None = None) -> None:
        """Flush, upload the outputs folder (Completed only), and end the run with `status`."""
        self.flush()
        if status == COMPLETED and self.outputs:
            self._upload_outputs()
        self.info = self.info._replace(status=status, end_time=now_us(), error=error)
        self.store.fan_out.end_run(self.info, status)
        untrack(self)

    def finish(self, status: str, error: Any = None) -> None:
        """End the run with `status` (and `error`, an exception or a message) unless it has ended."""
        if self.info.status == RUNNING:
            self.end(status, error_text(error))

    def _upload_outputs(self) -> None:
        folder = Path(self.outputs)
        if not folder.is_dir():
            return
        self.load_state()
        pairs = []
        for rel, path in folder_files(folder, "outputs"):
            name = f"outputs/{rel}"
            if name not in self.file_names:
                pairs.append((name, path))
        if pairs:
            self.upload(pairs)

    def end_at_exit(self) -> None:
        """Called by the exit hook for a run this process owns and did not end (see `ExitPolicy`)."""
        last = getattr(sys, "last_value", None)
        if self.exit_policy is ExitPolicy.COMPLETE and last is None:
            self.finish(COMPLETED)
        elif self.exit_policy is not ExitPolicy.FLUSH:
            self.finish(FAILED, last if last is not None else "the process exited without ending the run")
        else:
            self.flush()


# A forked child inherits copies of the parent's run cores: each becomes a writer of its own.
_LIVE_CORES: "weakref.WeakSet[RunCore]" = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [core.renew_writer() for core in list(_LIVE_CORES)])

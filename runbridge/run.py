"""`Run`: the azureml-shaped front end (docs/api.md, docs/metrics-shapes.md).

Every call is validated and converted here, before anything is written; then it becomes a record
that goes to every backend of the workspace (scalars and rows through the bounded buffer, files,
images, tags and properties at once). Reads flush first, then ask the first backend holding the
run and fold its records with `shapes`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Sequence

from . import liveness, shapes
from .buffer import WriteBuffer, track_unended, untrack
from .errors import FileExistsInRunError, PropertyChangeError, RunbridgeError, RunEndedError
from .media import image_from_path, image_from_plot, is_plot, read_stream, safe_name, sha256_of
from .records import (CANCELED, COMPLETED, FAILED, FINAL_STATUSES, RESERVED_PREFIX, RUNNING, File,
                      Image, Property, Record, Row, RunInfo, Tag, new_writer_id, now_us)
from .timefmt import iso_utc
from .values import (INT64_MAX, INT64_MIN, SMALL_INT, check_description, check_name, check_run_id, check_step,
                     check_text, tag_value, to_scalar, to_scalar_list)

if TYPE_CHECKING:
    import pandas

    from .experiment import Experiment

_SCALAR, _TABLE, _FILE_METRIC = "scalar", "table", "file"
#: Reserved tag holding the kind of run (interactive, script, child), for get_runs(type=...).
TYPE_TAG = RESERVED_PREFIX + "type"


class _NameState:
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


def folder_files(root: Path, argument: str) -> list[tuple[str, Path]]:
    """(relative POSIX name, path) of every regular file below `root`, sorted. Symbolic links
    (to files or folders) are skipped with one warning: they could point outside the folder."""
    files, links = [], []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            links.append(path.relative_to(root).as_posix())
        elif path.is_file():
            files.append((path.relative_to(root).as_posix(), path))
    if links:
        warnings.warn(f"{argument} {str(root)!r}: skipped {len(links)} symbolic link(s), which could point "
                      f"outside the folder: {', '.join(links[:5])}{' ...' if len(links) > 5 else ''}",
                      stacklevel=3)
    return files


class Run:
    """One run of an experiment. `Run(experiment, run_id)` fetches an existing run."""

    def __init__(self, experiment: "Experiment", run_id: str, **_ignored: Any):
        info, records = experiment.workspace.read_run(experiment.name, run_id)
        self._setup(experiment, info, owned=False)
        self._absorb_state(records)

    @classmethod
    def _from_records(cls, experiment: "Experiment", records: Sequence[Record]) -> "Run":
        """A fetched run built from records already read (no second read)."""
        run = cls.__new__(cls)
        run._setup(experiment, records[0], owned=False)
        run._absorb_state(records)
        return run

    # -- construction -----------------------------------------------------------------------
    def _setup(self, experiment: "Experiment", info: RunInfo, owned: bool, outputs: str | None = None) -> None:
        self.experiment = experiment
        self._workspace = experiment.workspace
        self._info = info
        self._outputs = outputs
        self._names: dict[str, _NameState] = {}
        #: This object's writer id: its records are numbered per name from 0, unique with the id.
        self._writer = new_writer_id()
        self._properties: dict[str, str | None] = {}
        self._file_names: set[str] = set()
        self._state_loaded = owned  # a run this process created has no earlier state
        self._buffer = WriteBuffer(self._write)
        self._parent: Run | None = None
        #: What the exit hook does with this run if it is still running: "fail" or "complete".
        self._exit_policy = "fail"

    @classmethod
    def _start(cls, experiment: "Experiment", display_name: str | None = None, parent: "Run | None" = None,
               outputs: str | None = "./outputs", tags: dict | None = None, run_type: str = "interactive",
               run_id: str | None = None) -> "Run":
        """Create a new Running run on every backend of the experiment's workspace."""
        if display_name is not None:
            if not isinstance(display_name, str):
                raise TypeError(f"display_name must be a str or None, got {type(display_name).__name__}")
            check_text(display_name, "display_name")
        if run_id is not None:
            check_run_id(run_id)
        if tags is not None and not isinstance(tags, dict):
            raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
        run = cls.__new__(cls)
        info = RunInfo(run_id=run_id or new_run_id(experiment.name), experiment=experiment.name,
                       display_name=display_name, parent_id=parent.id if parent else None,
                       status=RUNNING, start_time=now_us())
        run._setup(experiment, info, owned=True, outputs=outputs)
        run._parent = parent
        run._workspace.fan_out.start_run(info)
        run._workspace.fan_out.require_one_started(info)
        track_unended(run)
        run._emit([Tag(TYPE_TAG, run_type, info.start_time), liveness.heartbeat()] +
                  [Tag(check_name(k, "tags key"), tag_value(v, f"tags[{k!r}]"), info.start_time)
                   for k, v in (tags or {}).items()])
        return run

    @classmethod
    def get_context(cls, allow_offline: bool = True, **_ignored: Any) -> "Run":
        """The run of this process: the submitted run inside `submit`/`runbridge run`, else a new
        run in the configured workspace named after the script (completed at normal exit)."""
        from . import context

        return context.get_context(allow_offline)

    def _absorb_state(self, records: Sequence[Record]) -> None:
        """Learn the names (and their kinds and columns), properties and files already in the run.
        Sequence numbers are this writer's own: other writers' records do not move them."""
        for rec in records:
            kind = type(rec)
            if kind is Property:
                self._properties.setdefault(rec.key, rec.value)
            elif kind is File:
                self._file_names.add(rec.name)
            elif kind is RunInfo:
                self._info = rec
            else:
                name = getattr(rec, "name", None)
                if name is None:
                    continue
                if kind is Image:
                    self._file_names.add(rec.file_name)
                state = self._names.get(name)
                if state is None:
                    state = self._names[name] = _NameState(
                        _TABLE if kind is Row else _FILE_METRIC if kind is Image else _SCALAR)
                if rec.writer == self._writer:
                    state.next_seq = max(state.next_seq, rec.seq + 1)
                if kind is Row and state.columns is None:
                    state.columns = frozenset(c for c, _ in rec.cells)
        self._state_loaded = True

    def _load_state(self) -> None:
        if not self._state_loaded:
            self._absorb_state(self._read_records())

    # -- identity ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._info.run_id

    @property
    def display_name(self) -> str:
        return self._info.display_name or self._info.run_id

    @property
    def status(self) -> str:
        return self._info.status

    @property
    def number(self) -> int:
        """1-based position of the run among its experiment's runs, oldest first."""
        runs = self._workspace.runs_held(self.experiment.name)
        ids = [r.run_id for r in sorted(runs, key=lambda r: r.start_time)]
        return ids.index(self.id) + 1 if self.id in ids else 0

    @property
    def parent(self) -> "Run | None":
        if self._info.parent_id is None:
            return None
        if self._parent is None:
            self._parent = Run(self.experiment, self._info.parent_id)
        return self._parent

    def __repr__(self) -> str:
        return f"Run(experiment={self.experiment.name!r}, id={self.id!r}, status={self.status!r})"

    # -- the write path -----------------------------------------------------------------------
    def _write(self, records: Sequence[Record]) -> None:
        self._workspace.fan_out.write(self._info, records)

    def _emit(self, records: Sequence[Record]) -> None:
        """Queue records after whatever is buffered (keeping the order) and wake the writer. Wait
        for the write for files read from a path (the file may change once the call returns), and
        for a run this process is not running (a run fetched by id, an ended run: a tag set there
        is read back at once, perhaps by another process, and nothing is on a training hot path)."""
        if any(type(r) is File for r in records) or not self._owned_here():
            self._buffer.flush(then=records)
        else:
            self._buffer.add(records, wake=True)

    def _check_open(self) -> None:
        if self._info.status in FINAL_STATUSES:
            raise RunEndedError(
                f"run {self.id} has ended ({self._info.status}); metrics can no longer be logged "
                "(tags and properties still can)")

    def _claim(self, name: str, kind: str, count: int = 1, columns: frozenset | None = None) -> int:
        """Reserve `count` sequence numbers of `name` and return the first, refusing a name
        already used for another kind (or a table's other columns). Nothing is reserved on error."""
        state = self._names.get(name)
        if state is None:
            self._load_state()
            state = self._names.get(name)
        if state is None:
            state = self._names[name] = _NameState(kind, columns)
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

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a scalar; repeating a name appends (the metric becomes a vector)."""
        kind = type(value)
        if kind is not float and (kind is not int or not -SMALL_INT < value < SMALL_INT):
            value = to_scalar(value, "value")
        if type(name) is not str or not name or name not in self._names:
            check_name(name)
        if step is not None and (type(step) is not int or not INT64_MIN <= step <= INT64_MAX):
            step = check_step(step)
        if type(description) is not str or description:
            description = check_description(description)
        if self._info.status != RUNNING:
            self._check_open()
        state = self._names.get(name)
        if state is None or state.kind is not _SCALAR:
            seq = self._claim(name, _SCALAR)
        else:
            seq = state.next_seq
            state.next_seq = seq + 1
        self._buffer.add_scalar((name, seq, value, step, time.time_ns() // 1000, False, description, self._writer))

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log every value of an iterable under one name (repeated calls concatenate)."""
        check_name(name)
        values = to_scalar_list(value)
        description = check_description(description)
        self._check_open()
        seq = self._claim(name, _SCALAR, len(values))
        t, writer = now_us(), self._writer
        self._buffer.add([(name, seq + i, v, None, t, True, description, writer) for i, v in enumerate(values)])

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one table row; one column per keyword argument."""
        check_name(name)
        if not kwargs:
            raise ValueError(f"log_row({name!r}) needs at least one column, as keyword arguments")
        cells = tuple((check_name(column, "column name"), to_scalar(v, f"column {column!r}", "log_table"))
                      for column, v in kwargs.items())
        description = check_description(description)
        self._check_open()
        seq = self._claim(name, _TABLE, 1, frozenset(kwargs))
        self._buffer.add([Row(name, seq, cells, now_us(), False, description or "", self._writer)])

    def log_table(self, name: str, value: dict[str, Any], description: str = "") -> None:
        """Log a dict of equal-length columns (a bare scalar counts as one row)."""
        check_name(name)
        if not isinstance(value, dict):
            raise TypeError(f"value must be a dict of columns, got {type(value).__name__}")
        if not value:
            raise ValueError(f"value is an empty dict: log_table({name!r}) needs at least one column")
        columns: dict[str, list] = {}
        for column, cells in value.items():
            check_name(column, "value column name")
            if isinstance(cells, (str, bytes)) or not isinstance(cells, Iterable) or \
                    (type(cells).__module__ == "numpy" and getattr(cells, "ndim", 1) == 0):
                columns[column] = [to_scalar(cells, f"value[{column!r}]", "log_table")]
            else:
                columns[column] = [to_scalar(c, f"value[{column!r}][{i}]", "log_table") for i, c in enumerate(cells)]
        lengths = {c: len(v) for c, v in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"value columns of log_table({name!r}) have unequal lengths: {lengths}")
        n_rows = next(iter(lengths.values()))
        if n_rows == 0:
            raise ValueError(f"value columns of log_table({name!r}) are empty: no rows to log")
        description = check_description(description)
        self._check_open()
        seq = self._claim(name, _TABLE, n_rows, frozenset(columns))
        t = now_us()
        self._buffer.add([Row(name, seq + i, tuple((c, columns[c][i]) for c in columns), t, True, description,
                              self._writer) for i in range(n_rows)])

    # -- file-backed metrics ------------------------------------------------------------------
    def _unique_file_name(self, wanted: str) -> str:
        self._load_state()
        if wanted not in self._file_names:
            return wanted
        stem, dot, ext = wanted.rpartition(".")
        if not dot or "/" in ext:
            stem, ext = wanted, ""
        n = 1
        while True:
            candidate = f"{stem}_{n}.{ext}" if ext else f"{stem}_{n}"
            if candidate not in self._file_names:
                return candidate
            n += 1

    def _log_file_metric(self, name: str, file_name: str, data: bytes, media_type: str, description: str,
                         step: int | None = None) -> None:
        self._check_open()
        file_name = self._unique_file_name(file_name)
        seq = self._claim(name, _FILE_METRIC)
        self._file_names.add(file_name)
        self._emit([Image(name, seq, file_name, media_type, now_us(), step, data, description, self._writer)])

    def log_image(self, name: str, path: str | os.PathLike | None = None, plot: Any = None,
                  description: str = "") -> None:
        """Log a PNG/JPEG file (`path`) or a matplotlib figure / axes / `pyplot` (`plot`) as a run
        file. A plot given positionally (``log_image("ROC", plt)``, as azureml allowed) is a plot."""
        check_name(name)
        if plot is None and path is not None and not isinstance(path, (str, os.PathLike)):
            if not is_plot(path):
                raise TypeError(f"path must be a file path (str or os.PathLike), or give a matplotlib Figure, "
                                f"Axes or pyplot as plot; got {type(path).__name__}")
            path, plot = None, path
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path or plot, "
                             f"got {'both' if path is not None else 'neither'}")
        description = check_description(description)
        if path is not None:
            data, media_type = image_from_path(path)
            given = Path(path)
            file_name = safe_name(given.as_posix() if not given.is_absolute() and ".." not in given.parts
                                  else given.name, "path")
        else:
            data, media_type = image_from_plot(plot), "image/png"
            file_name = safe_name(f"{name}_{int(time.time())}.png", "name")
        self._log_file_metric(name, file_name, data, media_type, description)

    def _log_json(self, name: str, value: Any, description: str) -> None:
        check_name(name)
        description = check_description(description)
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"value of {name!r} is not valid JSON: {exc}") from None
            data = check_text(value, "value").encode("utf-8")
        elif isinstance(value, (dict, list)):
            try:
                data = json.dumps(value, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"value of {name!r} cannot be stored as JSON: {exc}") from None
        else:
            raise TypeError(f"value must be a dict or a JSON string, got {type(value).__name__}")
        self._log_file_metric(name, safe_name(name), data, "application/json", description)

    def log_confusion_matrix(self, name: str, value: Any, description: str = "") -> None:
        """Store a confusion matrix (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        """Store an accuracy table (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    def log_residuals(self, name: str, value: Any, description: str = "") -> None:
        """Store residuals (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    def log_predictions(self, name: str, value: Any, description: str = "") -> None:
        """Store predictions (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    # -- tags and properties --------------------------------------------------------------------
    def tag(self, key: str, value: Any = None) -> None:
        """Set a tag (a None value makes a valueless tag). Allowed on ended runs too."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags at once."""
        if not isinstance(tags, dict):
            raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
        t = now_us()
        records = [Tag(check_name(k, "key"), tag_value(v, f"value of tag {k!r}"), t) for k, v in tags.items()]
        self._emit(records)

    def remove_tags(self, keys: str | Iterable[str]) -> None:
        """Remove tags by key (absent keys are ignored)."""
        if isinstance(keys, str):
            keys = [keys]
        t = now_us()
        self._emit([Tag(check_name(k, "keys"), None, t, True) for k in keys])

    def get_tags(self) -> dict[str, str | None]:
        return shapes.fold_tags(self._read_records())

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties; they are add-only, so changing an existing one raises."""
        if not isinstance(properties, dict):
            raise TypeError(f"properties must be a dict, got {type(properties).__name__}")
        self._load_state()
        t = now_us()
        records = []
        for key, value in properties.items():
            check_name(key, "properties key")
            value = tag_value(value, f"property {key!r}")
            if key in self._properties:
                if self._properties[key] != value:
                    raise PropertyChangeError(
                        f"property {key!r} is already {self._properties[key]!r} and properties are add-only; "
                        f"it cannot become {value!r}")
                continue
            records.append(Property(key, value, t))
        self._emit(records)
        for rec in records:
            self._properties[rec.key] = rec.value

    def get_properties(self) -> dict[str, str | None]:
        return shapes.fold_properties(self._read_records())

    # -- files ----------------------------------------------------------------------------------
    def _file_record(self, name: str, path_or_stream: Any, argument: str) -> File:
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

    def _upload(self, pairs: list[tuple[str, Any]]) -> None:
        """Validate every (name, source) first, then write them; nothing is written on error."""
        self._load_state()
        records, seen = [], set()
        for name, source in pairs:
            clean = safe_name(name, "name")
            if clean.startswith(RESERVED_PREFIX):
                raise ValueError(f"name {name!r} uses the reserved prefix {RESERVED_PREFIX!r}")
            if clean in self._file_names or clean in seen:
                raise FileExistsInRunError(
                    f"name {clean!r} is already a file of run {self.id}; run files are write-once")
            seen.add(clean)
            records.append(self._file_record(clean, source, "path_or_stream"))
        self._emit(records)
        self._file_names.update(seen)

    def upload_file(self, name: str, path_or_stream: str | os.PathLike | IO[bytes]) -> None:
        """Store a file (or binary stream) as the run file `name`; names are write-once."""
        self._upload([(name, path_or_stream)])

    def upload_files(self, names: Sequence[str], paths: Sequence[str | os.PathLike]) -> None:
        """Upload several files; `names` and `paths` pair up."""
        names, paths = list(names), list(paths)
        if len(names) != len(paths):
            raise ValueError(f"names ({len(names)}) and paths ({len(paths)}) must have the same length")
        self._upload(list(zip(names, paths)))

    def upload_folder(self, name: str, path: str | os.PathLike) -> None:
        """Upload every file below folder `path` as `name/<relative path>`."""
        root = Path(path)
        if not root.is_dir():
            raise NotADirectoryError(f"path {str(path)!r} is not an existing folder")
        prefix = safe_name(name, "name")
        self._upload([(f"{prefix}/{rel}", p) for rel, p in folder_files(root, "path")])

    def get_file_names(self) -> list[str]:
        """Every run file: uploads, outputs/..., images, JSON metrics, user_logs/..."""
        return shapes.file_names(self._read_records())

    def download_file(self, name: str, output_file_path: str | os.PathLike | None = None) -> str:
        """Copy run file `name` to `output_file_path` (a file or folder; default: its base name here)."""
        clean = safe_name(name, "name")
        target = Path(output_file_path) if output_file_path is not None else Path(Path(clean).name)
        if target.is_dir():
            target = target / Path(clean).name
        self.flush()
        if not self._workspace.fetch_file(self._info, clean, str(target)):
            raise FileNotFoundError(f"run {self.id} has no file {clean!r}")
        return str(target)

    def download_files(self, prefix: str | None = None, output_directory: str | os.PathLike | None = None) -> list[str]:
        """Copy every run file whose name starts with `prefix` under `output_directory`."""
        out_dir = Path(output_directory) if output_directory is not None else Path.cwd()
        names = [n for n in self.get_file_names() if prefix is None or n.startswith(prefix)]
        return [self.download_file(n, out_dir / n) for n in names]

    # -- reading --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything buffered to the backends now."""
        self._buffer.flush()

    def _read_records(self) -> list[Record]:
        self.flush()
        _, records = self._workspace.read_run(self.experiment.name, self.id)
        return records

    def get_metrics(self, name: str | None = None, recursive: bool = False, **_ignored: Any) -> dict[str, Any]:
        """The logged metrics in the azureml shapes (docs/metrics-shapes.md); `recursive` keys them by run id."""
        if recursive:
            out = {}
            for run in [self, *self.get_children(recursive=True)]:
                metrics = run.get_metrics(name=name)
                if metrics:
                    out[run.id] = metrics
            return out
        folded = shapes.fold(self._read_records())
        if name is not None:
            return {name: folded[name]} if name in folded else {}
        return folded

    def get_metrics_frame(self, name: str | None = None) -> "pandas.DataFrame":
        """A lossless DataFrame: one row per logged value (name, step, timestamp, value, columns)."""
        from .frames import metrics_frame

        return metrics_frame(self._read_records(), name)

    # -- status ---------------------------------------------------------------------------------
    def get_status(self) -> str:
        """The status now; a Running run is re-read (another process, e.g. a submitted script's
        supervisor, may have ended it)."""
        if self._info.status == RUNNING:
            from .submit import current_info

            try:
                self._info = current_info(self)
                if self._info.status == RUNNING and not self._owned_here() and \
                        self._presumed_dead(self._read_records()):
                    return FAILED
            except RunbridgeError:  # the backends cannot say: what this process knows
                pass
        return self._info.status

    def _owned_here(self) -> bool:
        """True while this process started the run and has not ended it (it is alive, then)."""
        from .buffer import unended

        return any(run is self for run in unended())

    def _presumed_dead(self, records: Sequence[Record]) -> str | None:
        """Why a Running run another process writes is presumed dead (stale heartbeat), or None."""
        if self._owned_here():
            return None
        info = shapes.run_info(records) or self._info
        return liveness.presumed_dead(info, records)

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True) -> dict[str, Any]:
        """Block until the run ends (streaming its output with `show_output`), print a summary,
        and return `get_details()`; raises `RunFailedError` if it failed and `raise_on_error`."""
        from .submit import wait_for_completion

        return wait_for_completion(self, show_output=show_output, raise_on_error=raise_on_error)

    def restore_snapshot(self, snapshot_id: str | None = None, path: str | os.PathLike | None = None) -> str:
        """Copy the snapshot of a submitted run's source folder (a zip) to `path`; returns its path."""
        from .submit import restore_snapshot

        return restore_snapshot(self, path)

    def _end(self, status: str, error: str | None = None) -> None:
        self.flush()
        if status == COMPLETED and self._outputs:
            self._upload_outputs()
        self._info = self._info._replace(status=status, end_time=now_us(), error=error)
        self._workspace.fan_out.end_run(self._info, status)
        untrack(self)

    def _upload_outputs(self) -> None:
        folder = Path(self._outputs)
        if not folder.is_dir():
            return
        self._load_state()
        pairs = []
        for rel, path in folder_files(folder, "outputs"):
            name = f"outputs/{rel}"
            if name not in self._file_names:
                pairs.append((name, path))
        if pairs:
            self._upload(pairs)

    def complete(self) -> None:
        """Flush, upload the outputs folder, and mark the run Completed."""
        if self._info.status == RUNNING:
            self._end(COMPLETED)

    def fail(self, error_details: Any = None, error_code: str | None = None) -> None:
        """Mark the run Failed, keeping `error_details` (an exception or a message)."""
        if self._info.status == RUNNING:
            if isinstance(error_details, BaseException):
                error_details = f"{type(error_details).__name__}: {error_details}"
            self._end(FAILED, None if error_details is None else str(error_details))

    def cancel(self) -> None:
        """Mark the run Canceled."""
        if self._info.status == RUNNING:
            self._end(CANCELED)

    def _end_at_exit(self) -> None:
        """Called by the exit hook for a run this process started and did not end."""
        if self._exit_policy == "complete" and getattr(sys, "last_value", None) is None:
            self.complete()
        elif self._exit_policy in ("complete", "fail"):
            last = getattr(sys, "last_value", None)
            self.fail(last if last is not None else "the process exited without ending the run")
        else:
            self.flush()

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
        records = self._read_records()
        info = shapes.run_info(records) or self._info
        dead = self._presumed_dead(records)
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
            from .submit import LOG_PATH_PROPERTY, STD_LOG

            live = [r.value for r in records if type(r) is Property and r.key == LOG_PATH_PROPERTY]
            if live and os.path.exists(live[0]):
                details["logFiles"].setdefault(STD_LOG, live[0])
        if info.status == FAILED:
            details["error"] = {"error": {"code": "UserError", "message": info.error or ""}}
        return details

    def get_portal_url(self) -> str | None:
        """The first backend's own viewer address for this run."""
        return self._workspace.run_url(self._info)

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
        runs = self._workspace.runs_held(self.experiment.name)
        by_parent: dict[str, list[RunInfo]] = {}
        for info in sorted(runs, key=lambda r: r.start_time):
            if info.parent_id:
                by_parent.setdefault(info.parent_id, []).append(info)
        out, frontier = [], [self.id]
        while frontier:
            parent_id = frontier.pop(0)
            for info in by_parent.get(parent_id, []):
                out.append(Run(self.experiment, info.run_id))
                if recursive:
                    frontier.append(info.run_id)
        return out

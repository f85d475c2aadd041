"""The TensorBoard backend: runs as folders of event files that TensorBoard shows natively.

Layout under the log folder (the spec's location, ``tensorboard:<logdir>``)::

    <logdir>/<experiment>/<name> (<id[-8:]>)/       a top-level run (TensorBoard run "<experiment>/<name> (<id[-8:]>)")
        events.out.tfevents.<time>.<host>.<pid>.<n>.runbridge   one file per writing process
        events.out.tfevents.0000000000.hparams.runbridge      tags and properties as HParams (rewritten whole)
        runbridge.run.json                          the run's current RunInfo (for fast listing)
        files/<name>                                uploads, images, JSON metrics
        <child name> (<id[-8:]>)/                   child runs are sub-folders: sub-runs in TensorBoard
    <logdir>/<experiment>/.runbridge-index/<run id> where a run's folder is (children are nested)

A run's folder is named once, when it starts (`folder_name`): its display name and the end of its
id, or its id alone when it has no name or that folder is taken; renaming the run later leaves the
folder as it is. Folders named by the run id (how earlier versions laid runs out) read as before.
Names are percent-encoded where a file system or TensorBoard would trip on them. The event
files are the source of truth (see `translate`); the JSON state file only speeds up `list_runs`.
Every folder holding event files that runbridge did not write is a run too ("foreign" runs,
e.g. tensorboardX output): its id is its path relative to the experiment folder.
"""

from __future__ import annotations

import atexit
import hashlib
import heapq
import json
import os
import shlex
import shutil
import socket
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import quote

from tensorboard.compat.proto import event_pb2

from runbridge.batch import metric_points
from runbridge.errors import StoreNotFoundError
from runbridge.hookspecs import StoreLocation, hookimpl
from runbridge.media import safe_join, write_file_atomically
from runbridge.records import (
    COMPLETED, File, Image, Property, Record, RunInfo, collector_paused, record_from_dict, record_to_dict,
)

from . import fastbatch, fastread, hparams, tfrecord, translate

STATE_FILE = "runbridge.run.json"
FILES_DIR = "files"
INDEX_DIR = ".runbridge-index"
EVENT_MARK = "tfevents"
#: How runbridge's own event files end (a folder may also hold files other tools wrote).
OWN_SUFFIX = ".runbridge"


class ForeignRunWarning(UserWarning):
    """Parts of an event folder another tool wrote that runbridge cannot represent."""


def path_component(name: str) -> str:
    """A single path component for `name` (percent-encoded; long names shortened with a hash)."""
    out = quote(name, safe=" -_.,=+@()[]{}~!$&;")
    if out.startswith("."):
        out = "%2E" + out[1:]
    if not out:
        out = "%00"
    if len(out.encode()) > 200:
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        out = out[:180] + "~" + digest
    return out


def folder_name(run: RunInfo) -> str:
    """The folder TensorBoard lists a run under: ``<display name> (<last 8 chars of its id>)``, so
    people recognise it in the run selector; the id itself when the run has no name of its own."""
    name = run.display_name
    if not name or name == run.run_id:
        return path_component(run.run_id)
    return f"{path_component(name)} ({path_component(run.run_id[-8:])})"


def _is_event_file(name: str) -> bool:
    return EVENT_MARK in name and not name.endswith(".tmp")


def _event_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if _is_event_file(p.name) and p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _run_file(folder: Path, name: str) -> Path:
    """Where run file `name` of the run in `folder` lives; refuses names that leave the folder."""
    return safe_join(folder / FILES_DIR, name)


# --- one event file per run per process --------------------------------------------------------

class _EventFile:
    """Appends framed events to this process's event file of one run folder, flushing each batch.

    At most `MAX_OPEN_FILES` handles stay open per process (tagging a thousand finished runs must
    not run out of file descriptors): the least recently written one is closed, and reopened for
    appending when its run is written again.
    """

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, folder: Path):
        self.folder = folder
        self.path: Path | None = None
        self.handle = None
        self.encoder = translate.Encoder()
        self.lock = threading.Lock()

    def _open(self) -> None:
        if self.path is None:
            import time

            with _EventFile._counter_lock:
                _EventFile._counter += 1
                n = _EventFile._counter
            self.folder.mkdir(parents=True, exist_ok=True)
            host = socket.gethostname().replace("/", "_") or "host"
            self.path = self.folder / f"events.out.{EVENT_MARK}.{int(time.time()):010d}.{host}.{os.getpid()}.{n}{OWN_SUFFIX}"
            self.handle = open(self.path, "ab")
            self.handle.write(tfrecord.frame([translate.file_version_event()]))
        elif self.handle is None:
            self.handle = open(self.path, "ab")
        _opened(self)

    def append(self, records: Sequence[Record]) -> None:
        with self.lock:
            self._open()
            data = fastbatch.framed(self.encoder, records)  # a batch of float points, vectorized
            self.handle.write(data if data is not None else tfrecord.frame(self.encoder.encode(records)))
            self.handle.flush()

    def close(self) -> None:
        with self.lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            self.handle.close()
            self.handle = None
        with _OPEN_LOCK:
            _OPEN.pop(id(self), None)


MAX_OPEN_FILES = 64
_OPEN: "OrderedDict[int, _EventFile]" = OrderedDict()
_OPEN_LOCK = threading.Lock()


def _opened(writer: _EventFile) -> None:
    """Mark `writer` most recently used; close the least recently used handles over the limit."""
    with _OPEN_LOCK:
        _OPEN[id(writer)] = writer
        _OPEN.move_to_end(id(writer))
        excess = [w for w in _OPEN.values() if w is not writer][:max(0, len(_OPEN) - MAX_OPEN_FILES)]
    for other in excess:
        if other.lock.acquire(blocking=False):  # busy writers are left open this time
            try:
                other._close_locked()
            finally:
                other.lock.release()


_WRITERS: dict[tuple[int, str], _EventFile] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(folder: Path) -> _EventFile:
    key = (os.getpid(), str(folder))
    with _WRITERS_LOCK:
        w = _WRITERS.get(key)
        if w is None:
            w = _WRITERS[key] = _EventFile(folder)
        return w


def _close_all() -> None:
    with _WRITERS_LOCK:
        writers = [w for (pid, _), w in _WRITERS.items() if pid == os.getpid()]
    for w in writers:
        try:
            w.close()
        except Exception:  # noqa: BLE001 - at exit, best effort
            pass


atexit.register(_close_all)


# --- reading helpers ----------------------------------------------------------------------------

def _load_events(path: Path) -> Iterator[event_pb2.Event]:
    """The summary events of one event file, streamed in file order."""
    for blob in tfrecord.read_records(str(path)):
        event = fastread.summary_event(path, blob)
        if event is not None:
            yield event


def _merged_events(files: Sequence[Path]) -> Iterable[event_pb2.Event]:
    """The summary events of every file of a run folder: each file in its own order, files
    merged by event time (a second process on the same run writes its own file)."""
    streams = [_load_events(p) for p in files]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda e: e.wall_time)


def _first_wall_time(path: Path) -> float | None:
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return None
            (length,) = struct.unpack("<Q", head[:8])
            if length > 1 << 20:
                return None
            data = f.read(length)
        return event_pb2.Event.FromString(data).wall_time
    except Exception:  # noqa: BLE001 - damaged start: fall back to the file time
        return None


class TensorBoardBackend:
    """runbridge backend writing TensorBoard event files (``tensorboard:<logdir>``)."""

    @staticmethod
    @hookimpl
    def store_location(location: str, base: str) -> StoreLocation:
        """The log folder, absolute; the store owns it (a script's snapshot leaves it out)."""
        folder = (Path(base) / Path(location).expanduser()).resolve()
        return StoreLocation(str(folder), (str(folder),))

    def __init__(self, location: str):
        if not location:
            raise ValueError("the tensorboard backend needs a log folder: 'tensorboard:<logdir>'")
        self.root = Path(location).expanduser().resolve()
        self._folders: dict[tuple[str, str], Path] = {}

    def __repr__(self) -> str:
        return f"TensorBoardBackend({str(self.root)!r})"

    def _require_root(self) -> None:
        """Reads never create the log folder: a missing one is an error naming it."""
        if not self.root.is_dir():
            raise StoreNotFoundError(f"no TensorBoard log folder at {self.root} (it is created when a run "
                                     "writes to it; check the path)")

    # --- locating runs ------------------------------------------------------------------------
    def _experiment_dirs(self, experiment: str) -> list[Path]:
        dirs = [self.root / path_component(experiment)]
        if experiment and "/" not in experiment and experiment not in (".", "..") and experiment != path_component(experiment):
            dirs.append(self.root / experiment)
        return dirs

    @staticmethod
    def _state(folder: Path) -> RunInfo | None:
        try:
            with open(folder / STATE_FILE, encoding="utf-8") as f:
                rec = record_from_dict(json.load(f))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError) as exc:
            warnings.warn(ForeignRunWarning(f"unreadable run state {folder / STATE_FILE}: {exc}"), stacklevel=2)
            return None
        return rec if isinstance(rec, RunInfo) else None

    def _locate(self, experiment: str, run_id: str) -> Path | None:
        cached = self._folders.get((experiment, run_id))
        if cached is not None and (cached / STATE_FILE).exists():
            return cached
        for exp_dir in self._experiment_dirs(experiment):
            candidates = [exp_dir / path_component(run_id)]
            try:
                # exactly as written: a folder name may begin or end with spaces (a blank display name)
                rel = (exp_dir / INDEX_DIR / path_component(run_id)).read_text(encoding="utf-8").rstrip("\r\n")
                candidates.append(safe_join(exp_dir, rel))  # read from the store: checked like any name
            except (FileNotFoundError, NotADirectoryError):
                pass
            for folder in candidates:
                state = self._state(folder)
                if state is not None and state.run_id == run_id and state.experiment == experiment:
                    self._folders[(experiment, run_id)] = folder
                    return folder
        return self._locate_foreign(experiment, run_id)

    def _foreign_identity(self, folder: Path) -> tuple[str, str, Path]:
        """(experiment, run id, experiment folder) of an event folder another tool wrote."""
        rel = folder.relative_to(self.root)
        parts = rel.parts
        if not parts:
            return self.root.name, ".", self.root
        top = self.root / parts[0]
        if len(parts) == 1 or _event_files(top) or (top / STATE_FILE).exists():
            return self.root.name, rel.as_posix(), self.root
        return parts[0], Path(*parts[1:]).as_posix(), top

    def _locate_foreign(self, experiment: str, run_id: str) -> Path | None:
        if not run_id or run_id.startswith("/") or ".." in run_id.split("/"):
            return None
        bases = list(self._experiment_dirs(experiment))
        if experiment == self.root.name:
            bases.append(self.root)
        for base in bases:
            folder = base if run_id == "." else base / run_id
            if not _event_files(folder):
                continue
            state = self._state(folder)
            if state is not None:  # a foreign folder runbridge has written to since (adopted)
                if state.run_id == run_id and state.experiment == experiment:
                    return folder
                continue
            try:
                exp, rid, _ = self._foreign_identity(folder)
            except ValueError:
                continue
            if exp == experiment and rid == run_id:
                return folder
        return None

    def _create_folder(self, run: RunInfo) -> Path:
        exp_dir = self.root / path_component(run.experiment)
        parent = None
        if run.parent_id:
            parent = self._locate(run.experiment, run.parent_id)
            if parent is None or not (parent / STATE_FILE).exists():
                parent = exp_dir / path_component(run.parent_id)
        base = parent if parent is not None else exp_dir
        base.mkdir(parents=True, exist_ok=True)
        folder = base / path_component(run.run_id)
        named = folder_name(run)
        if named != folder.name and not folder.exists():
            try:  # claimed atomically: two runs of one name never share a folder
                (base / named).mkdir()
                folder = base / named
            except FileExistsError:
                pass  # the name is taken: the id folder, which is unique
        folder.mkdir(exist_ok=True)
        index = exp_dir / INDEX_DIR / path_component(run.run_id)
        write_file_atomically(index, data=folder.relative_to(exp_dir).as_posix().encode("utf-8"))
        return folder

    def _write_state(self, folder: Path, run: RunInfo) -> None:
        state = json.dumps(record_to_dict(run), ensure_ascii=False).encode("utf-8")
        write_file_atomically(folder / STATE_FILE, data=state)

    def _folder_for_write(self, run: RunInfo) -> Path:
        folder = self._locate(run.experiment, run.run_id)
        if folder is None or not (folder / STATE_FILE).exists():
            self.start_run(run)
            folder = self._locate(run.experiment, run.run_id)
            assert folder is not None
        return folder

    # --- hooks: writing ----------------------------------------------------------------------
    @hookimpl
    def start_run(self, run: RunInfo) -> None:
        folder = self._locate(run.experiment, run.run_id)
        if folder is None:
            folder = self._create_folder(run)
        # else: our run, or a folder another tool wrote that is now written to (tagged, say):
        # it is adopted in place, its own event files stay as they are and are still read
        self._folders[(run.experiment, run.run_id)] = folder
        existing = self._state(folder)
        if existing == run:
            return
        self._write_state(folder, run)
        _writer(folder).append([run])

    @hookimpl
    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        if not records:
            return
        folder = self._folder_for_write(run)
        _, others = metric_points(records)  # metric points have no files and set no hparams
        for rec in others:  # bytes first: an event never points at a file that is not there
            kind = type(rec)
            if kind is File:
                if rec.source is not None or rec.data is not None:
                    write_file_atomically(_run_file(folder, rec.name), data=rec.data, source=rec.source)
            elif kind is Image and rec.data is not None:
                write_file_atomically(_run_file(folder, rec.file_name), data=rec.data)
        _writer(folder).append(records)
        if hparams.shown_in(others):
            shown = hparams.updated(hparams.read(folder), others)
            if shown is not None:
                hparams.write(folder, shown, run.start_time, run.run_id)

    @hookimpl
    def end_run(self, run: RunInfo, status: str) -> None:
        final = run._replace(status=status)
        folder = self._folder_for_write(final)
        writer = _writer(folder)
        writer.append([final])
        self._write_state(folder, final)
        writer.close()

    # --- hooks: reading ----------------------------------------------------------------------
    @hookimpl
    def read(self, experiment: str, run_id: str) -> list[Record] | None:
        self._require_root()
        folder = self._locate(experiment, run_id)
        if folder is None:
            return None
        with collector_paused():
            if (folder / STATE_FILE).exists():
                return self._read_own(folder)
            return self._read_foreign(folder, experiment, run_id)

    @hookimpl
    def read_info(self, experiment: str, run_id: str) -> RunInfo | None:
        """The run's state file (what `read` gives first), or a foreign folder's info from its
        files' first wall times: opening a run by id reads no events."""
        self._require_root()
        folder = self._locate(experiment, run_id)
        if folder is None:
            return None
        if (folder / STATE_FILE).exists():
            state = self._state(folder)
            if state is not None:
                return state
            with collector_paused():  # unreadable: the last RunInfo among the events
                return self._read_own(folder)[0]  # type: ignore[return-value]
        return self._foreign_info(folder, experiment, run_id)

    def _read_own(self, folder: Path) -> list[Record]:
        state = self._state(folder)  # written after the events of start_run/end_run: the newest
        current = None
        files = _event_files(folder)
        own = [p for p in files if p.name.endswith(OWN_SUFFIX) and p.name != hparams.HPARAMS_FILE]
        records: list[Record] = []
        foreign = [p for p in files if not p.name.endswith(OWN_SUFFIX)]
        if foreign:  # an adopted folder: what the other tool wrote comes first
            records.extend(self._decode_foreign(folder, foreign)[0])
        for rec in fastread.decode_files([str(p) for p in own]):
            kind = type(rec)
            if kind is RunInfo:
                current = rec
            elif kind is File:
                path = _run_file(folder, rec.name)
                records.append(rec._replace(source=str(path)) if path.is_file() else rec)
            else:
                records.append(rec)
        current = state or current
        if current is None:
            raise RuntimeError(f"run folder {folder} has neither {STATE_FILE} nor a RunInfo record")
        return [current, *records]

    @staticmethod
    def _decode_foreign(folder: Path, files: Sequence[Path],
                        keep_image_bytes: bool = False) -> tuple[list[Record], dict[str, bytes]]:
        """Records of event files another tool wrote: properties (hparams) first, then every
        series in step order; kinds runbridge cannot hold are named in one warning."""
        decoder = translate.ForeignDecoder()
        records: list[Record] = []
        for ev in _merged_events(files):
            records.extend(decoder.decode(ev, keep_image_bytes))
        if decoder.skipped:
            kinds = ", ".join(f"{k} ({n})" for k, n in sorted(decoder.skipped.items()))
            warnings.warn(ForeignRunWarning(
                f"event folder {folder}: runbridge has no record for these summaries, not read: {kinds}"),
                stacklevel=3)
        props = [r for r in records if type(r) is Property]
        series = sorted((r for r in records if type(r) is not Property), key=_step_of)
        return [*props, *series], decoder.images

    def _read_foreign(self, folder: Path, experiment: str, run_id: str) -> list[Record]:
        records, _ = self._decode_foreign(folder, _event_files(folder))
        return [self._foreign_info(folder, experiment, run_id), *records]

    def _foreign_info(self, folder: Path, experiment: str, run_id: str) -> RunInfo:
        files = _event_files(folder)
        start = None
        for p in files:
            w = _first_wall_time(p)
            if w is not None and (start is None or w < start):
                start = w
        mtimes = [p.stat().st_mtime_ns // 1000 for p in files]
        end = max(mtimes) if mtimes else None
        if start is None:
            start = (min(mtimes) / 1e6) if mtimes else 0.0
        parent_id = None
        _, _, exp_dir = self._foreign_identity(folder)
        up = folder
        while up != exp_dir and exp_dir in up.parents:
            up = up.parent
            if _event_files(up) or (up / STATE_FILE).exists():
                state = self._state(up)
                parent_id = state.run_id if state else self._foreign_identity(up)[1]
                break
        return RunInfo(run_id=run_id, experiment=experiment, display_name=folder.name,
                       parent_id=parent_id, status=COMPLETED, start_time=round(start * 1e6),
                       end_time=end)

    @hookimpl
    def list_runs(self, experiment: str | None) -> list[RunInfo] | None:
        runs: list[RunInfo] = []
        self._require_root()
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".runbridge") and not d.startswith(".tmp-"))
            folder = Path(dirpath)
            if STATE_FILE in filenames:
                if FILES_DIR in dirnames:
                    dirnames.remove(FILES_DIR)  # uploads are not runs, whatever they hold
                info = self._state(folder)
                if info is not None and (experiment is None or info.experiment == experiment):
                    runs.append(info)
            elif any(_is_event_file(f) for f in filenames):
                exp, rid, _ = self._foreign_identity(folder)
                if experiment is None or exp == experiment:
                    runs.append(self._foreign_info(folder, exp, rid))
        runs.sort(key=lambda r: r.start_time, reverse=True)
        return runs

    @hookimpl
    def run_url(self, run: RunInfo) -> str | None:
        self._require_root()
        folder = self._locate(run.experiment, run.run_id)
        if folder is None:
            return None
        return f"tensorboard --logdir {shlex.quote(str(folder))}"  # run folder names hold spaces

    @hookimpl
    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool | None:
        self._require_root()
        folder = self._locate(run.experiment, run.run_id)
        if folder is None:
            return None
        src = _run_file(folder, name)
        if src.is_file():
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, destination)
            return True
        foreign = [p for p in _event_files(folder) if not p.name.endswith(OWN_SUFFIX)]
        if foreign:
            _, images = self._decode_foreign(folder, foreign, keep_image_bytes=True)
            if name in images:
                Path(destination).parent.mkdir(parents=True, exist_ok=True)
                Path(destination).write_bytes(images[name])
                return True
        return None


def _step_of(rec: Any) -> int:
    step = getattr(rec, "step", None)
    return step if step is not None else 0

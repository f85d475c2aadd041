"""The local spool: what a failed backend missed, kept on disk until `runbridge sync` replays it.

When a backend fails during a run, the `Backend` handle disables it for that run (one warning)
and, from the failing call on, appends every call it would have made (`start_run`, `write` with
its records, `end_run`) to one JSON-lines file per backend, run and process:

    <spool folder>/<backend spec, made a file name>/<run id>.<process token>.jsonl

(one file per process: several processes logging one run never interleave their lines).

The spool folder is ``RUNBRIDGE_SPOOL`` if set, else ``.runbridge/spool`` in the working folder
(beside the default store). Records are in `runbridge.records`' exact JSON form; file bytes are
inlined (up to `INLINE_FILE_BYTES` each, else the local path is kept). A file is bounded by
`MAX_SPOOL_BYTES`: past it, an ``overflow`` line says the spool is incomplete and nothing more is
appended (sync then needs another backend that holds the run). When a call cannot be kept (the
bound, a full disk, a file-size limit), `keep` raises `SpoolError` so the caller warns, and leaves
a small ``<run id>.jsonl.lost`` file beside the spool when it can: `load` then reports the spool
incomplete even though its last lines look whole.

`replay` gives a backend what it missed without duplicating anything: the failing batch may have
been partly stored, so a record is skipped when the backend already holds one with its identity
(`runbridge.holdings`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .holdings import Holdings
from .records import RUNNING, File, Record, RunInfo, record_from_dict, record_to_dict

if TYPE_CHECKING:
    from .backends import Backend

ENV_SPOOL = "RUNBRIDGE_SPOOL"
MAX_SPOOL_BYTES = 256 * 1024 * 1024
INLINE_FILE_BYTES = 16 * 1024 * 1024
_LOCK = threading.Lock()


def spool_root() -> Path:
    return Path(os.environ.get(ENV_SPOOL) or Path.cwd() / ".runbridge" / "spool")


def _folder_name(spec: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec).strip("._")[:80]
    return f"{slug}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


_PROCESS = {"pid": -1, "token": ""}


def _process_token() -> str:
    """A token unique to this process (renewed in a forked child)."""
    if _PROCESS["pid"] != os.getpid():
        _PROCESS.update(pid=os.getpid(), token=f"{os.getpid()}-{secrets.token_hex(4)}")
    return _PROCESS["token"]


def spool_path(spec: str, run_id: str, root: Path | None = None) -> Path:
    """This process's spool file for `run_id` in backend `spec`."""
    safe_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:200]
    return (root or spool_root()) / _folder_name(spec) / f"{safe_id}.{_process_token()}.jsonl"


def files_for(spec: str, run_id: str, root: Path | None = None) -> list[Path]:
    """Every process's spool file for `run_id` in backend `spec`."""
    mine = spool_path(spec, run_id, root)
    safe_id = mine.name[: -len(f".{_process_token()}.jsonl")]
    pattern = re.compile(re.escape(safe_id) + r"\.\d+-[0-9a-f]{8}\.jsonl")
    folder = mine.parent
    return sorted(p for p in folder.glob("*.jsonl") if pattern.fullmatch(p.name)) if folder.is_dir() else []


def _inline(rec: Record) -> Record:
    if type(rec) is File and rec.data is None and rec.source and os.path.isfile(rec.source) \
            and os.path.getsize(rec.source) <= INLINE_FILE_BYTES:
        with open(rec.source, "rb") as handle:
            return rec._replace(data=handle.read(), source=None)
    return rec


class SpoolError(OSError):
    """The spool could not keep a missed call (a full disk, a file-size limit, the size bound)."""


def lost_marker(path: Path) -> Path:
    """The small file beside a spool file that says the spool lost records (written on failure)."""
    return path.with_name(path.name + ".lost")


def _mark_lost(path: Path, call: str, count: int, error: str) -> None:
    """Best effort: a new tiny file can often still be written when the spool file cannot."""
    try:
        marker = lost_marker(path)
        marker.parent.mkdir(parents=True, exist_ok=True)
        with open(marker, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"op": call, "records": count, "error": error}) + "\n")
    except OSError:
        pass


def keep(spec: str, call: str, run: RunInfo, kwargs: dict[str, Any]) -> None:
    """Append one missed hook call to the spool; raises `SpoolError` (after leaving a `.lost`
    marker when it can) if the call could not be kept, so the caller can say so."""
    path = spool_path(spec, run.run_id)
    count = len(kwargs.get("records") or ())
    try:
        with _LOCK:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            size = 0 if new else path.stat().st_size
            if size > MAX_SPOOL_BYTES:
                raise SpoolError(f"the spool file {path} is past its {MAX_SPOOL_BYTES} byte bound")
            entry: dict[str, Any] = {"op": call, "run": record_to_dict(run)}
            if call == "write":
                entry["records"] = [record_to_dict(_inline(r)) for r in kwargs["records"]]
            elif call == "end_run":
                entry["status"] = kwargs["status"]
            line = json.dumps(entry, ensure_ascii=False, allow_nan=False)
            with open(path, "a", encoding="utf-8") as handle:
                if new:
                    handle.write(json.dumps({"op": "header", "spec": spec, "experiment": run.experiment,
                                             "run_id": run.run_id}) + "\n")
                if size + len(line) > MAX_SPOOL_BYTES:
                    handle.write(json.dumps({"op": "overflow"}) + "\n")
                    raise SpoolError(f"the spool file {path} reached its {MAX_SPOOL_BYTES} byte bound")
                handle.write(line + "\n")
                handle.flush()  # a full disk or a file-size limit shows here, not at close
    except Exception as exc:  # noqa: BLE001 - reported to the caller as one error type
        _mark_lost(path, call, count, f"{type(exc).__name__}: {exc}")
        if isinstance(exc, SpoolError):
            raise
        raise SpoolError(f"the spool could not keep a {call} of {count} records in {path}: "
                         f"{type(exc).__name__}: {exc}") from exc


def pending(root: Path | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every spool file with its header (spec, experiment, run id)."""
    base = root or spool_root()
    if not base.is_dir():
        return
    for path in sorted(base.glob("*/*.jsonl")):
        try:
            with open(path, encoding="utf-8") as handle:
                header = json.loads(handle.readline())
        except (OSError, ValueError):
            continue
        if header.get("op") == "header":
            yield path, header


def load(path: Path) -> tuple[list[tuple[str, RunInfo, Any]], bool]:
    """The spooled calls (op, run, records or status) and whether the spool overflowed."""
    calls, overflow = [], lost_marker(path).exists()  # a spool that lost records is incomplete
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut short by a kill: everything before it is good
                break
            op = entry.get("op")
            if op == "overflow":
                overflow = True
            elif op in ("start_run", "write", "end_run"):
                run = record_from_dict(entry["run"])
                extra = [record_from_dict(r) for r in entry["records"]] if op == "write" else entry.get("status")
                calls.append((op, run, extra))
    return calls, overflow


def replay(path: Path, backend: "Backend") -> tuple[int, bool]:
    """Give `backend` the calls spooled in `path`; returns (records written, whether the spool
    was complete). Raises if the backend still fails."""
    calls, overflow = load(path)
    written = 0
    held: Holdings | None = None
    for op, run, extra in calls:
        if op == "start_run":
            backend.start_run(run)
        elif op == "write":
            if held is None:
                stored = backend.read(run.experiment, run.run_id)
                if stored is None:  # never created there: create it as it was when this process wrote
                    backend.start_run(run._replace(status=RUNNING, end_time=None, error=None))
                # else leave its state alone: another process (the one that owns the run) may
                # have ended it since, and this process's view of it is older
                held = Holdings(stored.records if stored is not None else ())
            todo = [r for r in extra if r not in held]
            if todo:
                backend.write(run, todo)
                written += len(todo)
                for rec in todo:
                    held.add(rec)
        else:
            backend.end_run(run, extra)
    return written, not overflow

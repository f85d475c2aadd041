"""Copy runs from one backend to another through the hooks, idempotently (README: "Moving runs").

`migrate(src, dst)` reads each selected run from the source (`list_runs` + `read`, file and image
bytes with `fetch_file`) and writes it to the destination (`start_run` + `write` in bounded
batches + `end_run`): the same records, so every kind, step, time, tag, property, file, status,
display name and parent link travels unchanged. Parents are copied before their children.

Bookkeeping (reserved tags, hidden from users like every ``runbridge.*`` name; defined in
`runbridge.migrate_report` with the report and the read-back comparison):

* ``runbridge.source``: written right after `start_run` on each copied run; JSON ``{"backend": <source spec>,
  "run_id": ..., "via": [<earlier sources>]}``. It marks the run as a copy made by migrate.
* ``runbridge.migrated = complete``: written last, after every record and after `end_run` set
  the status and end time (tags may be written to ended runs). A run only counts as copied once
  it carries it.

Resuming. A run found at the destination with our source tag but without the marker is a copy a
killed migration left half-written. Rather than trimming it (the hooks cannot delete) or writing
it under a fresh id (users would see two runs), migrate reads what the destination holds and
writes only the records it lacks, by record identity (`runbridge.holdings`), so each point lands
exactly once. A destination run that holds nothing at all (killed between `start_run` and the
source tag) is finished the same way.

Safety. A run whose id already exists at the destination but was not copied there from this
source is reported as failed and never written to; a run that came *from* the destination (its
source chain names it) is skipped as already present, so A→B→A does not loop. After each run the
destination is read back and compared with what was written; every value it could not hold
exactly is listed in the report, per run and name.

`runbridge.sync` repairs the backends that failed during a run with `copy_run` too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from .backends import Backend, BackendSpec, absolute_spec, open_backend
from .errors import RunbridgeError, RunNotFoundError, StoreNotFoundError
from .holdings import lacking
from .media import safe_name, sha256_of
from .migrate_report import (COMPLETE, MIGRATED_TAG, SOURCE_TAG, Difference, MigrationReport, compare,
                             is_bookkeeping)
from .records import RUNNING, File, Image, Record, RunInfo, RunRecords, Tag, now_us
from .shapes import fold_tags

#: Records per `write` call, and bytes of files/images fetched per batch.
BATCH_RECORDS = 10_000
BATCH_BYTES = 64 * 1024 * 1024


def canonical_spec(spec: str | BackendSpec | Backend) -> str:
    """A spec with local paths made absolute, so the same store is recognised however named."""
    return absolute_spec(spec.spec if isinstance(spec, Backend) else spec)


def _open(spec: str | BackendSpec | Backend) -> Backend:
    return spec if isinstance(spec, Backend) else open_backend(spec)


def _to_us(since: Any) -> int | None:
    if since is None:
        return None
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        return int(since)
    if isinstance(since, str):
        try:
            since = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"since {since!r} is not a date (use YYYY-MM-DD or an ISO date-time)") from None
    if isinstance(since, date) and not isinstance(since, datetime):
        since = datetime(since.year, since.month, since.day)
    if not isinstance(since, datetime):
        raise TypeError(f"since must be a date, datetime, ISO string or microseconds, got {type(since).__name__}")
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return int(since.timestamp() * 1_000_000)


def parents_first(runs: Iterable[RunInfo]) -> list[RunInfo]:
    """Runs ordered so that every parent comes before its children (oldest first otherwise)."""
    runs = sorted(runs, key=lambda r: (r.start_time, r.run_id))
    ids = {r.run_id for r in runs}
    children: dict[str | None, list[RunInfo]] = {}
    for run in runs:
        parent = run.parent_id if run.parent_id in ids else None
        children.setdefault(parent, []).append(run)
    out, stack = [], list(reversed(children.get(None, [])))
    while stack:
        run = stack.pop()
        out.append(run)
        stack.extend(reversed(children.get(run.run_id, [])))
    return out


def select_runs(source: Backend, experiments: Sequence[str] | None = None,
                run_ids: Sequence[str] | None = None, since: Any = None) -> list[RunInfo]:
    """The runs a migration copies: by experiment, by id (with their descendants), started since."""
    if experiments:
        known = set(source.list_experiments())
        missing = [e for e in experiments if e not in known]
        if missing:
            raise RunbridgeError(f"experiment {missing[0]!r} is not in {source.spec} "
                                 f"(experiments there: {', '.join(sorted(known)) or 'none'})")
        runs = [r for e in dict.fromkeys(experiments) for r in source.list_runs(e)]
    else:
        runs = source.list_runs(None)
    if run_ids:
        by_id = {r.run_id: r for r in runs}
        missing = [i for i in run_ids if i not in by_id]
        if missing:
            raise RunNotFoundError(f"run {missing[0]!r} is not in {source.spec}"
                                   + (f" (experiments {', '.join(experiments)})" if experiments else ""))
        chosen = set(run_ids)
        grew = True
        while grew:  # add descendants
            grew = False
            for run in runs:
                if run.parent_id in chosen and run.run_id not in chosen:
                    chosen.add(run.run_id)
                    grew = True
        runs = [r for r in runs if r.run_id in chosen]
    cutoff = _to_us(since)
    if cutoff is not None:
        runs = [r for r in runs if r.start_time >= cutoff]
    return parents_first(runs)


# ---------------------------------------------------------------------------------------------
# copying one run


class Progress:
    """Progress bars for a long copy: runs and records, drawn only on a terminal (never into a
    log file or a pipe)."""

    def __init__(self, enabled: bool, runs: int):
        self.runs = self.records = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.runs = tqdm(total=runs, unit="run", desc="runs", position=0, leave=True)
            self.records = tqdm(total=0, unit="rec", desc="records", position=1, leave=True)

    def add_records(self, n: int) -> None:
        if self.records is not None:
            self.records.total += n
            self.records.refresh()

    def wrote(self, n: int) -> None:
        if self.records is not None:
            self.records.update(n)

    def run_done(self) -> None:
        if self.runs is not None:
            self.runs.update(1)

    def close(self) -> None:
        for bar in (self.records, self.runs):
            if bar is not None:
                bar.close()


def check_file_names(source: Backend, run_id: str, records: Sequence[Record]) -> None:
    """Refuse a run whose records name a file unsafely (an absolute path, '..', ...) before any
    path is built from it or anything is written: such names come from a store, not a user."""
    for rec in records:
        kind = type(rec)
        name = rec.name if kind is File else rec.file_name if kind is Image else None
        if name is None:
            continue
        try:
            safe_name(name, "file name")
        except (TypeError, ValueError) as exc:
            raise RunbridgeError(f"run {run_id!r} in {source.spec} holds an unsafe file name {name!r} "
                                 f"({exc}); the run was not copied") from None


def _with_bytes(source: Backend, info: RunInfo, rec: Record, scratch: Path) -> tuple[Record, int]:
    """The record with the bytes the destination needs (fetched from the source when absent)."""
    kind = type(rec)
    if kind is File:
        if rec.data is not None:
            return rec, len(rec.data)
        path = rec.source if rec.source and os.path.isfile(rec.source) else None
        if path is None:
            target = scratch / f"f{uuid.uuid4().hex}"
            if not source.fetch_file(info, rec.name, str(target)):
                raise RunbridgeError(f"the source holds no bytes for file {rec.name!r}")
            path = str(target)
        size, digest = (rec.size, rec.sha256) if rec.sha256 and rec.size else sha256_of(path=Path(path))
        return rec._replace(source=path, data=None, size=size, sha256=digest), size
    if kind is Image and rec.data is None:
        target = scratch / f"i{uuid.uuid4().hex}"
        if not source.fetch_file(info, rec.file_name, str(target)):
            raise RunbridgeError(f"the source holds no bytes for image {rec.name!r} ({rec.file_name})")
        data = target.read_bytes()
        target.unlink()
        return rec._replace(data=data), len(data)
    return rec, 0


def copy_run(source: Backend, dest: Backend, info: RunInfo, held: RunRecords | None,
             source_key: str | None, progress: Progress | None = None,
             batch_records: int = BATCH_RECORDS, verify: bool = True) -> tuple[int, list[Difference]]:
    """Copy one run (or finish a partial copy `held`); returns (records written, differences).

    `source_key` (the source's canonical spec) goes into the source tag; None is the repair mode
    of `sync`: no source tag and no completion marker.
    """
    found = source.read(info.experiment, info.run_id)
    if found is None:
        raise RunNotFoundError(f"run {info.run_id!r} vanished from {source.spec}")
    current = found.info
    body = [r for r in found.records if not (type(r) is Tag and is_bookkeeping(r.key))]
    check_file_names(source, info.run_id, body)
    todo = lacking(body, held.records if held is not None else None)
    if progress:
        progress.add_records(len(todo))
    written = 0
    dest.start_run(current._replace(status=RUNNING, end_time=None, error=None))
    if source_key is not None and not (held is not None and SOURCE_TAG in fold_tags(held.records, include_reserved=True)):
        # At once, on its own: from now on the run is recognisably ours (a resumable copy).
        origin = _parse_source(fold_tags(found.records, include_reserved=True).get(SOURCE_TAG))
        via = [] if origin is None else [origin.get("backend", ""), *origin.get("via", [])]
        tag = json.dumps({"backend": source_key, "run_id": info.run_id, "via": via})
        dest.write(current, [Tag(SOURCE_TAG, tag, now_us())])
    scratch = Path(tempfile.mkdtemp(prefix="runbridge-migrate-"))
    try:
        batch: list[Record] = []
        size = 0
        for rec in todo:
            rec, n = _with_bytes(source, current, rec, scratch)
            batch.append(rec)
            size += n
            if len(batch) >= batch_records or size >= BATCH_BYTES:
                dest.write(current, batch)
                written += len(batch)
                if progress:
                    progress.wrote(len(batch))
                batch, size = [], 0
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
        if batch:
            dest.write(current, batch)
            written += len(batch)
            if progress:
                progress.wrote(len(batch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    dest.end_run(current, current.status)
    if source_key is not None:  # last: only a run holding every record and its status is complete
        dest.write(current, [Tag(MIGRATED_TAG, COMPLETE, now_us())])
    diffs: list[Difference] = []
    if verify:
        back = dest.read(info.experiment, info.run_id)
        if back is None:
            diffs.append(Difference(info.run_id, "(run)", "the destination does not read the run back"))
        else:
            diffs = compare(info.run_id, [current, *body], back.all())
    return written, diffs


# ---------------------------------------------------------------------------------------------
# migrate


def _parse_source(value: str | None) -> dict | None:
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def migrate(src: str | Backend, dst: str | Backend, experiments: Sequence[str] | None = None,
            run_ids: Sequence[str] | None = None, since: Any = None, dry_run: bool = False,
            progress: bool = True, batch_records: int = BATCH_RECORDS, verify: bool = True) -> MigrationReport:
    """Copy runs from backend `src` to backend `dst` (specs like ``sqlite:runs.db``).

    Selects every run of the source, or those of `experiments`, the `run_ids` (with their
    descendants), started at or after `since` (a date, datetime or ISO string; naive means UTC).
    Runs already complete at the destination are skipped; half-written ones are finished.
    `dry_run` lists what would happen and writes nothing. Returns a `MigrationReport`.
    """
    if isinstance(experiments, str):
        experiments = [experiments]
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    source, dest = _open(src), _open(dst)
    src_key, dst_key = canonical_spec(source), canonical_spec(dest)
    if src_key == dst_key:
        raise RunbridgeError(f"source and destination are the same backend ({src_key})")
    report = MigrationReport(str(source.spec), str(dest.spec), dry_run=dry_run)
    runs = select_runs(source, experiments, run_ids, since)
    try:
        dest_runs = {r.run_id: r for r in dest.list_runs(None)}
    except StoreNotFoundError:  # created by the first write (never by a dry run)
        dest_runs = {}
    bars = Progress(progress and not dry_run, len(runs))
    try:
        for info in runs:
            try:
                action, reason, held = _plan(source, dest, info, dest_runs, src_key, dst_key)
                if dry_run:
                    report.planned.append((info.run_id, info.experiment, action))
                    continue
                if action == "skip":
                    report.skipped.append((info.run_id, reason))
                elif action == "refuse":
                    report.failed.append((info.run_id, reason))
                else:
                    n, diffs = copy_run(source, dest, info, held, src_key, bars, batch_records, verify)
                    report.records += n
                    report.differences.extend(diffs)
                    report.copied.append(info.run_id)
                    if action == "resume":
                        report.resumed.append(info.run_id)
            except Exception as exc:  # noqa: BLE001 - one bad run must not stop the others
                report.failed.append((info.run_id, str(exc) if isinstance(exc, RunbridgeError)
                                      else f"{type(exc).__name__}: {exc}"))
            finally:
                bars.run_done()
    finally:
        bars.close()
    return report


def _plan(source: Backend, dest: Backend, info: RunInfo, dest_runs: dict[str, RunInfo], src_key: str,
          dst_key: str) -> tuple[str, str, RunRecords | None]:
    """(action, reason, what the destination holds): copy, resume, skip or refuse."""
    if info.run_id not in dest_runs:
        return "copy", "", None
    there = dest_runs[info.run_id]
    held = dest.read(info.experiment, info.run_id) if there.experiment == info.experiment else None
    if held is None:
        return "refuse", (f"a run with this id already exists at the destination in experiment "
                          f"{there.experiment!r}; not overwritten"), None
    tags = fold_tags(held.records, include_reserved=True)
    mark = _parse_source(tags.get(SOURCE_TAG))
    if mark is not None and mark.get("backend") == src_key and mark.get("run_id") == info.run_id:
        if tags.get(MIGRATED_TAG) == COMPLETE:
            return "skip", "already present", None
        return "resume", "", held
    if not held.records:  # created, holding nothing (a copy killed before its first write): finish it
        return "resume", "", held
    found = source.read(info.experiment, info.run_id)
    origin = _parse_source(fold_tags(found.records if found else [], include_reserved=True).get(SOURCE_TAG))
    if origin is not None and dst_key in [origin.get("backend"), *origin.get("via", [])]:
        return "skip", "already present (it was migrated from the destination)", None
    return "refuse", ("a run with this id already exists at the destination and was not copied there "
                      "from this source; not overwritten"), None


__all__ = ["migrate", "MigrationReport", "Difference", "copy_run", "compare", "select_runs", "parents_first",
           "canonical_spec", "SOURCE_TAG", "MIGRATED_TAG"]

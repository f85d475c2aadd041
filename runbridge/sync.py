"""`runbridge sync`: give every backend what it missed while it was failing during a run.

Two sources of what was missed, repaired in this order:

1. **A healthy copy.** A backend that failed during a run is marked on the run in the healthy
   backends (``runbridge.incomplete.<label>``, see `runbridge.fanout`). sync copies what the
   marked backend lacks from a healthy one (`migrate.copy_run`: by record identity, so nothing is
   duplicated), asks it to reconcile its derived views (MLflow's native history), and clears the
   mark.
2. **The local spool.** Where no healthy backend holds the run (one backend, or all failed), the
   calls kept in the spool (`runbridge.spool`, one file per process) are replayed.

A run counts as repaired only when the repaired backend reads back every record the source held
(checked by identity); otherwise the report says how many records are still missing, the mark and
the spool stay, and the command exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from . import spool
from .backends import Backend, open_backend
from .config import resolve_backends
from .errors import RunbridgeError, StoreNotFoundError
from .fanout import INCOMPLETE_PREFIX, incomplete_labels
from .holdings import lacking
from .migrate import Progress, copy_run, parents_first
from .migrate_report import Difference, is_bookkeeping
from .records import Record, RunInfo, Tag, now_us
from .shapes import fold_tags


@dataclass
class SyncReport:
    """What `sync` did (or, with `dry_run`, would do). `ok` is False when anything is left."""

    dry_run: bool = False
    #: (run id, backend spec, how): every repair done
    repaired: list[tuple[str, str, str]] = field(default_factory=list)
    #: (run id, backend spec, why): every repair that could not be completed
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    #: (run id, backend spec, action): what a dry run would do
    planned: list[tuple[str, str, str]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    records: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        if self.dry_run:
            if not self.planned:
                return "Nothing to sync: every backend holds every run."
            lines = [f"  {action} -> {spec}: run {run_id}" for run_id, spec, action in self.planned]
            return "\n".join([f"Dry run: would repair {len(self.planned)} backend copy(ies) of runs; "
                              "nothing was written.", *lines])
        if not self.repaired and not self.failed:
            return "Nothing to sync: every backend holds every run."
        lines = []
        if self.repaired:
            lines.append(f"Repaired {len(self.repaired)} run(s), {self.records} record(s) written")
        lines += [f"  {run_id} -> {spec} ({how})" for run_id, spec, how in self.repaired]
        if self.failed:
            lines.append(f"Could not complete {len(self.failed)} repair(s):")
        lines += [f"  not held exactly: {diff}" for diff in self.differences]
        lines += [f"  NOT repaired {run_id} -> {spec}: {why}" for run_id, spec, why in self.failed]
        return "\n".join(lines)


@dataclass
class _Repair:
    """One backend's copy of one run to repair, from a healthy backend."""

    info: RunInfo
    healthy: Backend
    target: Backend


def _marked_runs(opened: Sequence[Backend], labels: list[str], run_ids: Sequence[str] | None) -> list[_Repair]:
    """Every (run, failed backend) that a healthy backend marks incomplete."""
    work: list[_Repair] = []
    seen: set[str] = set()
    for index, healthy in enumerate(opened if len(opened) > 1 else []):
        try:
            runs = healthy.list_runs(None)
        except RunbridgeError:
            continue
        for info in parents_first(runs):
            if info.run_id in seen or (run_ids and info.run_id not in run_ids):
                continue
            found = healthy.read(info.experiment, info.run_id)
            if found is None:
                continue
            marks = [k for k in fold_tags(found.records, include_reserved=True) if k.startswith(INCOMPLETE_PREFIX)]
            if not marks or INCOMPLETE_PREFIX + labels[index] in marks:
                continue  # complete everywhere, or this copy is itself an incomplete one
            seen.add(info.run_id)
            for key in marks:
                label = key[len(INCOMPLETE_PREFIX):]
                if label in labels:
                    work.append(_Repair(info, healthy, opened[labels.index(label)]))
    return work


def _still_missing(target: Backend, info: RunInfo, expected: Sequence[Record]) -> int:
    """How many of `expected` (bookkeeping tags aside) `target` does not read back."""
    wanted = [r for r in expected if not (type(r) is Tag and is_bookkeeping(r.key))]
    held = target.read(info.experiment, info.run_id)
    return len(lacking(wanted, held.records if held is not None else None))


def _clear_mark(opened: Sequence[Backend], label: str, info: RunInfo) -> None:
    key = INCOMPLETE_PREFIX + label
    for backend in opened:
        try:
            found = backend.read(info.experiment, info.run_id)
            if found is not None and key in fold_tags(found.records, include_reserved=True):
                backend.write(info, [Tag(key, None, now_us(), True)])
        except RunbridgeError:
            pass


def _repair_from_healthy(job: _Repair, report: SyncReport, progress: Progress) -> bool:
    """Copy what `job.target` lacks from `job.healthy`; True when it then holds everything."""
    info, target = job.info, job.target
    held = target.read(info.experiment, info.run_id)
    written, diffs = copy_run(job.healthy, target, info, held, None, progress)
    target.reconcile(info)
    report.records += written
    report.differences.extend(diffs)
    source = job.healthy.read(info.experiment, info.run_id)
    missing = _still_missing(target, info, source.records if source is not None else [])
    if missing:
        report.failed.append((info.run_id, str(target.spec), f"{missing} record(s) still missing after the copy"))
        return False
    report.repaired.append((info.run_id, str(target.spec), f"copied from {job.healthy.spec}"))
    return True


def _spooled_runs(run_ids: Sequence[str] | None) -> dict[tuple[str, str], list[tuple[Path, dict]]]:
    """Spool files grouped by (backend spec, run id): one file per process that logged."""
    groups: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    for path, header in spool.pending():
        if not run_ids or header.get("run_id") in run_ids:
            groups.setdefault((header.get("spec", ""), header.get("run_id", "")), []).append((path, header))
    return groups


def _replay_spool(target: Backend, files: list[tuple[Path, dict]], report: SyncReport) -> RunInfo | None:
    """Replay every spool file of one run into `target`; the run's info when it then holds every
    spooled record (the files are deleted), else None (the files stay)."""
    run_id, experiment = files[0][1].get("run_id", ""), files[0][1].get("experiment", "")
    expected: list[Record] = []
    complete = True
    for path, _ in files:
        written, whole = spool.replay(path, target)
        report.records += written
        complete = complete and whole
        for op, _run, extra in spool.load(path)[0]:
            if op == "write":
                expected.extend(extra)
    info = RunInfo(run_id, experiment)
    target.reconcile(info)
    missing = _still_missing(target, info, expected)
    if missing or not complete:
        why = f"{missing} spooled record(s) still missing after the replay" if missing else \
            "the local spool is incomplete (it passed its size bound, or the disk was full): what it " \
            "could not keep is only in the other backends, if any"
        report.failed.append((run_id, str(target.spec), why))
        return None
    for path, _ in files:
        path.unlink(missing_ok=True)
    report.repaired.append((run_id, str(target.spec), "replayed from the local spool"))
    return info


def _require_a_store(opened: Sequence[Backend]) -> None:
    """Raise the first backend's `StoreNotFoundError` when no store of the workspace exists: sync
    has nothing to repair from, and must not create them (a typo in a path, say)."""
    missing = []
    for backend in opened:
        try:
            backend.list_experiments()
            return
        except StoreNotFoundError as exc:
            missing.append(exc)
        except RunbridgeError:
            return  # exists, but failing: reported per run below
    if missing:
        raise missing[0]


def sync(backends: Sequence[str] | str | None = None, run_ids: Sequence[str] | None = None,
         dry_run: bool = False, progress: bool = True) -> SyncReport:
    """Repair every backend of the workspace (`backends`, else the configuration) that missed
    records of a run; see the module docstring. The failed backends must be reachable again."""
    opened = [open_backend(s) for s in resolve_backends(backends)]
    labels = incomplete_labels(opened)
    report = SyncReport(dry_run=dry_run)
    spooled = _spooled_runs(run_ids)
    if not spooled:
        _require_a_store(opened)
    work = _marked_runs(opened, labels, run_ids)
    if dry_run:
        report.planned += [(j.info.run_id, str(j.target.spec), f"copy from {j.healthy.spec}") for j in work]
        repaired_first = {(str(j.target.spec), j.info.run_id) for j in work}
        report.planned += [(run_id, spec, "replay the local spool") for spec, run_id in spooled
                           if (spec, run_id) not in repaired_first]
        return report
    bars = Progress(progress, len(work) + len(spooled))
    repaired: set[tuple[str, str]] = set()
    try:
        for job in work:
            try:
                if _repair_from_healthy(job, report, bars):
                    _clear_mark(opened, labels[opened.index(job.target)], job.info)
                    repaired.add((str(job.target.spec), job.info.run_id))
            except Exception as exc:  # noqa: BLE001 - one run's failure must not stop the others
                report.failed.append((job.info.run_id, str(job.target.spec), str(exc)))
            finally:
                bars.run_done()
        copied_from_healthy = {(str(j.target.spec), j.info.run_id) for j in work}
        for (spec, run_id), files in spooled.items():
            try:
                if (spec, run_id) in copied_from_healthy:
                    # a healthy copy is the whole run: its spool is dropped once that repair
                    # succeeded, and kept (not replayed: same target, same fault) if it failed
                    if (spec, run_id) in repaired:
                        for path, _ in files:
                            path.unlink(missing_ok=True)
                    continue
                target = next((b for b in opened if str(b.spec) == spec), None) or open_backend(spec)
                info = _replay_spool(target, files, report)
                if info is not None and target in opened:
                    _clear_mark(opened, labels[opened.index(target)], info)
            except Exception as exc:  # noqa: BLE001
                report.failed.append((run_id, spec, str(exc)))
            finally:
                bars.run_done()
    finally:
        bars.close()
    return report


__all__ = ["sync", "SyncReport"]

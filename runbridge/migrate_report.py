"""What a migration (or a sync) reports, and how a copy is checked: the bookkeeping tags a copy
carries, `MigrationReport` / `Difference`, and `compare` (a run as written against its
read-back, per name). Used by `runbridge.migrate` and `runbridge.sync`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .fanout import INCOMPLETE_PREFIX
from .records import RESERVED_PREFIX, STREAM_TYPES, File, Record, RunInfo, exactly_equal
from .shapes import fold_properties, fold_tags

SOURCE_TAG = RESERVED_PREFIX + "source"
MIGRATED_TAG = RESERVED_PREFIX + "migrated"
COMPLETE = "complete"


def is_bookkeeping(key: str) -> bool:
    """Reserved tags that describe a copy or a backend's state, never copied between backends."""
    return key in (SOURCE_TAG, MIGRATED_TAG) or key.startswith(INCOMPLETE_PREFIX)


# ---------------------------------------------------------------------------------------------
# the report


@dataclass
class Difference:
    """One thing the destination did not hold exactly."""

    run_id: str
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.run_id} {self.name}: {self.detail}"


@dataclass
class MigrationReport:
    """What a migration did. `ok` is False when any run failed (`runbridge.sync` has its own report)."""

    source: str
    destination: str
    dry_run: bool = False
    copied: list[str] = field(default_factory=list)
    #: Runs among `copied` that a killed migration had left half-written and that were finished.
    resumed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Dry run: (run id, experiment, action) for every selected run.
    planned: list[tuple[str, str, str]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    records: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = []
        if self.dry_run:
            lines.append(f"Dry run: {self.source} -> {self.destination}; nothing was written.")
            for run_id, experiment, action in self.planned:
                lines.append(f"  {action:<8} {experiment}/{run_id}")
            counts = Counter(a for _, _, a in self.planned)
            lines.append("Would copy {} run(s), resume {}, skip {} already present, refuse {}.".format(
                counts.get("copy", 0), counts.get("resume", 0), counts.get("skip", 0), counts.get("refuse", 0)))
            return "\n".join(lines)
        lines.append(f"Migrated {self.source} -> {self.destination}")
        resumed = f" ({len(self.resumed)} resumed)" if self.resumed else ""
        lines.append(f"  copied:  {len(self.copied)} run(s){resumed}, {self.records} record(s) written")
        lines.append(f"  skipped: {len(self.skipped)} run(s) already present")
        lines.append(f"  failed:  {len(self.failed)} run(s)")
        for run_id, reason in self.failed:
            lines.append(f"    {run_id}: {reason}")
        if self.differences:
            lines.append(f"  not held exactly by the destination: {len(self.differences)}")
            for diff in self.differences:
                lines.append(f"    {diff}")
        else:
            lines.append("  every value copied reads back exactly")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------------------------
# comparing what was written with what the destination reads back


def _streams(records: Iterable[Record]) -> dict[tuple[str, str, str], list[Record]]:
    """Stream records by (kind, name, writer), each in seq order."""
    out: dict[tuple[str, str, str], list[Record]] = {}
    for rec in records:
        if type(rec) in STREAM_TYPES:
            out.setdefault((type(rec).__name__, rec.name, rec.writer), []).append(rec)
    for stream in out.values():
        stream.sort(key=lambda r: r.seq)
    return out


_COMPARED = {"Metric": ("value", "step", "time"), "Row": ("cells", "time"),
             "Image": ("file_name", "media_type", "step", "time")}


def compare(run_id: str, written: Sequence[Record], back: Sequence[Record]) -> list[Difference]:
    """Every difference between the records of a run and a read-back of it, per name."""
    diffs: list[Difference] = []
    info_w = written[0] if written and type(written[0]) is RunInfo else None
    info_b = back[0] if back and type(back[0]) is RunInfo else None
    if info_w is not None and info_b is not None:
        for fld in ("experiment", "display_name", "parent_id", "status", "start_time", "end_time", "error"):
            a, b = getattr(info_w, fld), getattr(info_b, fld)
            if a != b:
                diffs.append(Difference(run_id, f"(run {fld})", f"{a!r} reads back as {b!r}"))
    ws, bs = _streams(written), _streams(back)
    for key in list(ws) + [k for k in bs if k not in ws]:
        kind, name, _ = key
        a, b = ws.get(key, []), bs.get(key, [])
        if len(a) != len(b):
            diffs.append(Difference(run_id, name, f"{len(a)} {kind.lower()} record(s) written, {len(b)} read back"))
        for fld in _COMPARED[kind]:
            bad = [(i, getattr(x, fld), getattr(y, fld)) for i, (x, y) in enumerate(zip(a, b))
                   if not exactly_equal(getattr(x, fld), getattr(y, fld))]
            if bad:
                i, x, y = bad[0]
                what = "value" if fld in ("value", "cells") else fld
                diffs.append(Difference(run_id, name, f"{len(bad)} of {len(a)} {what}s differ "
                                        f"(first, #{i}: {x!r} reads back as {y!r})"))
    for label, fold in (("tag", lambda r: {k: v for k, v in fold_tags(r, include_reserved=True).items()
                                           if not is_bookkeeping(k)}),
                        ("property", fold_properties)):
        a, b = fold(written), fold(back)
        for k in sorted(set(a) | set(b)):
            if k not in b:
                diffs.append(Difference(run_id, f"{label} {k}", "missing at the destination"))
            elif k not in a:
                diffs.append(Difference(run_id, f"{label} {k}", f"only at the destination ({b[k]!r})"))
            elif a[k] != b[k]:
                diffs.append(Difference(run_id, f"{label} {k}", f"{a[k]!r} reads back as {b[k]!r}"))
    fw = {r.name: r for r in written if type(r) is File}
    fb = {r.name: r for r in back if type(r) is File}
    for name in sorted(set(fw) | set(fb)):
        if name not in fb:
            diffs.append(Difference(run_id, f"file {name}", "missing at the destination"))
        elif name not in fw:
            if not name.startswith(RESERVED_PREFIX):
                diffs.append(Difference(run_id, f"file {name}", "only at the destination"))
        elif fw[name].size != fb[name].size or (fw[name].sha256 and fb[name].sha256
                                                 and fw[name].sha256 != fb[name].sha256):
            diffs.append(Difference(run_id, f"file {name}", "contents differ"))
    return diffs

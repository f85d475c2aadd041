"""What a backend already holds of a run, by record identity: the one rule behind resuming a
migration, replaying the spool and repairing with `runbridge sync`.

Records are identified by `runbridge.records.record_key`: a stream record by (kind, name, writer,
seq), a file by its name, a property by its key, a tag operation by everything it says. Because
the writer is part of the key, records of several processes logging one run never collide, and a
record is sent again only if the destination lacks exactly that record.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .records import STREAM_TYPES, Record, RunInfo, record_key


class Holdings:
    """The identities of the records a backend holds for one run."""

    def __init__(self, held: Iterable[Record] = ()):
        self._seqs: dict[tuple, set[int]] = {}  # (kind, name, writer) -> seqs held
        self._others: set[tuple] = set()
        for rec in held:
            self.add(rec)

    def add(self, rec: Record) -> None:
        kind = type(rec)
        if kind in STREAM_TYPES:
            self._seqs.setdefault((kind.__name__, rec.name, rec.writer), set()).add(rec.seq)
        elif kind is not RunInfo:
            self._others.add(record_key(rec))

    def __contains__(self, rec: Record) -> bool:
        kind = type(rec)
        if kind in STREAM_TYPES:
            return rec.seq in self._seqs.get((kind.__name__, rec.name, rec.writer), ())
        return record_key(rec) in self._others


def lacking(records: Sequence[Record], held: Iterable[Record] | None) -> list[Record]:
    """The records of `records` (RunInfo aside) that a backend holding `held` does not have."""
    holdings = Holdings(held or ())
    return [r for r in records if type(r) is not RunInfo and r not in holdings]

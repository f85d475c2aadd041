"""The per-run metric summary (schema 4): ``(last, min, max)`` of every metric's int and float
values, NaN and bools left out, kept in table `metric_summary` and updated in the transaction
that writes the points, so a run list of 10,000 runs is one query instead of 10,000 reads.

`last` is the value of the point latest in logging order (time, writer, seq), kept with that key;
`min` and `max` keep the first of equal values, as Python's `min`/`max` over the points would.
Ints beyond SQLite's 64 bits are stored as their decimal text (a number column never holds
text otherwise)."""

from __future__ import annotations

import sqlite3
from itertools import compress
from operator import itemgetter
from typing import Any, Iterable, Sequence

from runbridge.batch import SEQ, TIME, VALUE, WRITER
from runbridge.records import Metric

from .chunks import Batch, unpack

INT64 = 2**63
# Points are `Metric`s or the plain tuples of their fields: read by position.
_VALUE, _WRITER, _LAST_KEY = itemgetter(VALUE), itemgetter(WRITER), itemgetter(TIME, WRITER, SEQ)

#: Up to this many metric names in a batch (of floats, one writer) are summarized by a pass per
#: name in C; more go through one Python loop over the points.
_FEW_NAMES = 16

#: (last, min, max, last key) of one metric name; the key is (time, writer, seq).
Trio = tuple[Any, Any, Any, tuple[int, str, int]]


def _numbers(points: Sequence[tuple]) -> list[tuple]:
    return [m for m in points if (type(m[VALUE]) is float and m[VALUE] == m[VALUE]) or type(m[VALUE]) is int]


def batch_trios(batch: Batch) -> dict[str, Trio]:
    """The summary of one batch's points, per metric name."""
    metrics, names = batch.metrics, batch.names
    if batch.one_series and batch.all_floats:  # the common batch: C loops over what packing took
        return _float_metrics(batch, names[:1])
    by_name: dict[str, list[tuple]] = dict.fromkeys(names)  # first-logged order
    if batch.one_writer and batch.all_floats and len(by_name) <= _FEW_NAMES:
        return _float_metrics(batch, by_name)
    if len(by_name) == 1:
        by_name[names[0]] = list(metrics)
    else:
        for name in by_name:
            by_name[name] = []
        add = {name: points.append for name, points in by_name.items()}
        for name, m in zip(names, metrics):
            add[name](m)
    out: dict[str, Trio] = {}
    for name, points in by_name.items():
        values = list(map(_VALUE, points))
        if set(map(type, values)) == {float}:  # the common batch: C loops
            total = sum(values)
            if total == total:  # no NaN (a NaN, or inf and -inf, make the sum NaN)
                nums, kept = values, points
            else:
                kept = [m for m in points if m[VALUE] == m[VALUE]]
                nums = list(map(_VALUE, kept))
        else:
            kept = _numbers(points)
            nums = list(map(_VALUE, kept))
        if not nums:
            continue
        one_writer = len(set(map(_WRITER, points))) == 1
        last = kept[-1] if one_writer else max(kept, key=_LAST_KEY)
        out[name] = (last[VALUE], min(nums), max(nums), _LAST_KEY(last))
    return out


def _float_metrics(batch: Batch, names: Iterable[str]) -> dict[str, Trio]:
    """The summaries of metrics of floats logged by one writer: a pass in C per name (and none
    to pick a name's points out of a batch of one series)."""
    values, every = batch.values, range(len(batch.values))
    out: dict[str, Trio] = {}
    for name in names:
        mask = None if batch.one_series else list(map(name.__eq__, batch.names))
        nums = values if mask is None else list(compress(values, mask))
        total = sum(nums)
        if total == total:  # no NaN (a NaN, or inf and -inf, make the sum NaN)
            last = every[-1] if mask is None else len(mask) - 1 - mask[::-1].index(True)
        else:
            kept = [i for i in (every if mask is None else compress(every, mask)) if values[i] == values[i]]
            if not kept:
                continue
            nums, last = [values[i] for i in kept], kept[-1]
        out[name] = (values[last], min(nums), max(nums), (batch.times[last], batch.writers[last], batch.seqs[last]))
    return out


def _stored(value: Any) -> Any:
    return str(value) if type(value) is int and not -INT64 <= value < INT64 else value


def loaded(value: Any) -> Any:
    """A summary value as stored -> the value logged."""
    return int(value) if type(value) is str else value


def merge(conn: sqlite3.Connection, run: int, trios: dict[str, Trio]) -> None:
    """Fold one batch's summaries into the stored ones of run `run` (inside its transaction)."""
    for name, (last, low, high, key) in trios.items():
        row = conn.execute("SELECT last, min, max, last_time, last_writer, last_seq FROM metric_summary"
                           " WHERE run = ? AND name = ?", (run, name)).fetchone()
        if row is not None:
            old_last, old_low, old_high = map(loaded, row[:3])
            if tuple(row[3:]) > key:
                last, key = old_last, tuple(row[3:])
            low = low if low < old_low else old_low
            high = high if high > old_high else old_high
        conn.execute("INSERT INTO metric_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run, name) DO UPDATE"
                     " SET last = excluded.last, min = excluded.min, max = excluded.max, last_time = excluded.last_time,"
                     " last_writer = excluded.last_writer, last_seq = excluded.last_seq",
                     (run, name, _stored(last), _stored(low), _stored(high), *key))


def backfill(conn: sqlite3.Connection) -> None:
    """Summarize every run already stored (the migration to schema 4), from both point layouts."""
    from .schema import legacy_value

    for (run,) in conn.execute("SELECT pk FROM runs").fetchall():
        points = [Metric(name, seq, legacy_value(value, vtype), None, time, False, "", writer)
                  for name, seq, value, vtype, time, writer in conn.execute(
                      "SELECT name, seq, value, vtype, time, writer FROM metrics WHERE run = ? ORDER BY rowid", (run,))]
        for chunk in conn.execute("SELECT n, series, which, seqs, vals, steps, times, extra FROM metric_chunks"
                                  " WHERE run = ? ORDER BY rowid", (run,)).fetchall():
            points.extend(unpack(*chunk))
        if points:
            merge(conn, run, batch_trios(Batch(points)))

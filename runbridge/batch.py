"""A batch of records as the writer hands it to a backend's `write` hook.

Logging calls queue a scalar as the plain tuple of its `Metric` fields (the cheapest thing to
make); `Batch` shows those entries as records, each `Metric` made on access, so a backend that
only iterates sees ordinary records. A backend that stores many points splits a batch with
`metric_points` instead: the points come as the plain tuples themselves (read them with the
field positions below, `NAME` to `WRITER`), with no object made per point.
"""

from __future__ import annotations

from itertools import chain
from typing import Iterator, Sequence

from .records import Metric, Record

#: Field positions of a point, a `Metric` or the plain tuple of its fields.
NAME, SEQ, VALUE, STEP, TIME, FROM_LIST, DESCRIPTION, WRITER = range(8)
assert Metric._fields == ("name", "seq", "value", "step", "time", "from_list", "description", "writer")

_new = tuple.__new__
_FIELDS = len(Metric._fields)


class Batch(Sequence):
    """A batch as a read-only sequence of records, made on access from the buffered entries: the
    `Metric` of a plain tuple lives only while a backend looks at it, so a large batch does not
    fill the garbage collector's old generation (plain tuples of numbers and strings are untracked
    at its first pass; `Metric` objects, a tuple subclass, never are)."""

    __slots__ = ("_entries",)

    def __init__(self, entries: list):
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [_record(e) for e in self._entries[index]]
        return _record(self._entries[index])

    def __iter__(self) -> Iterator[Record]:
        for entry in self._entries:
            yield _new(Metric, entry) if type(entry) is tuple else entry

    def __repr__(self) -> str:
        return f"Batch({len(self._entries)} records)"


def _record(entry: object) -> Record:
    return _new(Metric, entry) if type(entry) is tuple else entry  # type: ignore[return-value]


def metric_points(records: Sequence[Record]) -> tuple[Sequence[tuple], list[Record]]:
    """The scalar metric points of `records` (`Metric`s or plain tuples of their fields, index
    them by `Metric` field position) and every other record, each part in write order. A `Batch`
    of only points is handed over as it is, without a pass per point in Python."""
    entries = records._entries if isinstance(records, Batch) else records
    kinds = set(map(type, entries))
    if kinds <= {tuple, Metric}:
        return entries, []
    if not kinds & {tuple, Metric}:
        return [], list(records)
    points = [e for e in entries if type(e) is tuple or type(e) is Metric]
    others = [e for e in entries if type(e) is not tuple and type(e) is not Metric]
    return points, others


def point_columns(points: Sequence[tuple]) -> tuple[list, ...]:
    """The eight field columns of `points` (names, seqs, values, steps, times, from_lists,
    descriptions, writers): one flattening and eight slices, every loop in C (`zip(*points)`
    takes four times as long on a million points)."""
    flat = list(chain.from_iterable(points))
    return tuple(flat[k::_FIELDS] for k in range(_FIELDS))


def series_codes(names: Sequence[str], writers: Sequence[str]) -> tuple[list[int], list[tuple[str, str]]]:
    """Each point's series number and the (name, writer) series in first-logged order. Points of
    one writer (the usual batch) are indexed by name alone, whose hash Python keeps."""
    if len(set(writers)) == 1:
        order = list(dict.fromkeys(names))
        by_name = {name: i for i, name in enumerate(order)}
        return list(map(by_name.__getitem__, names)), [(name, writers[0]) for name in order]
    pairs = list(zip(names, writers))
    series = list(dict.fromkeys(pairs))
    by_pair = {pair: i for i, pair in enumerate(series)}
    return list(map(by_pair.__getitem__, pairs)), series

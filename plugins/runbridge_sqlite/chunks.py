"""Metric points packed as columns: one database row per written batch instead of one per point.

A chunk holds the `Metric` records of one batch in write order as contiguous little-endian arrays
(seq and step int64, value float64, time int64 µs), the (name, writer) series they belong to, and
an index array saying which series each point is in (left out when the batch has one series).
Whatever a float array cannot say exactly is kept in a small JSON side form, only when present:
values that are not floats (ints of any size, bools, str, None), None steps (a chunk where no
point has a step, `run.log` without one, says so once and stores no steps array), `from_list`
and descriptions. For the common all-float batch, packing and unpacking loop in C, not in Python.
"""

from __future__ import annotations

import json
import sys
from array import array
from functools import partial
from itertools import compress, repeat
from typing import Any, Sequence

from runbridge.batch import point_columns, series_codes
from runbridge.records import Metric, MetricColumns, Same

_SWAP = sys.byteorder != "little"
_new_metric = partial(tuple.__new__, Metric)


def _blob(values: array) -> bytes:
    if _SWAP:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _array(typecode: str, blob: bytes) -> array:
    out = array(typecode)
    out.frombytes(blob)
    if _SWAP:
        out.byteswap()
    return out


class Batch:
    """The per-point columns of a batch of points (`Metric`s or their plain field tuples), taken
    once for packing and the summary (`point_columns`: all loops in C)."""

    def __init__(self, metrics: Sequence[tuple]) -> None:
        self.metrics = metrics
        (self.names, self.seqs, self.values, self.steps, self.times, self.from_lists, self.descriptions,
         self.writers) = point_columns(metrics)
        self.one_writer = len(set(self.writers)) == 1
        self.one_series = self.one_writer and len(set(self.names)) == 1
        self.all_floats = set(map(type, self.values)) == {float}


def pack(batch: Batch) -> tuple:
    """The chunk columns (n, series, which, seqs, vals, steps, times, extra) of a batch."""
    names, writers, values, steps = batch.names, batch.writers, batch.values, batch.steps
    n = len(names)
    which = None
    if batch.one_series:
        series = [(names[0], writers[0])]
    else:
        codes, series = series_codes(names, writers)
        which = _blob(array("I", codes))
    extra: dict[str, Any] = {}
    if batch.all_floats:
        vals = array("d", values)
    else:  # exact types ride in JSON: ints of any size, bools, str and None keep their type there
        vals = array("d", [v if type(v) is float else 0.0 for v in values])
        extra["v"] = [[i, v] for i, v in enumerate(values) if type(v) is not float]
    steps_blob = None
    if None in steps:
        if steps.count(None) == n:
            extra["N"] = 1
            steps_blob = b""
        else:
            extra["s"] = [i for i, s in enumerate(steps) if s is None]
            steps = [0 if s is None else s for s in steps]
    if any(batch.from_lists):
        extra["l"] = [i for i, flag in enumerate(batch.from_lists) if flag]
    if any(batch.descriptions):
        extra["d"] = [[i, d] for i, d in enumerate(batch.descriptions) if d]
    return (n, json.dumps(series, ensure_ascii=False), which, _blob(array("q", batch.seqs)), _blob(vals),
            _blob(array("q", steps)) if steps_blob is None else steps_blob, _blob(array("q", batch.times)),
            json.dumps(extra, ensure_ascii=False) if extra else None)


def _with_exceptions(n: int, values: Any, steps: Any, extra: str | None) -> tuple[Any, Any, list[bool] | None, dict]:
    """A chunk's values and steps with the exceptions its `extra` JSON lists put back (values
    that are not floats, missing steps), its from_list flags (None when no point has one), and
    the parsed `extra` itself (empty when None)."""
    more = {} if extra is None else json.loads(extra)
    if "v" in more:
        values = values.tolist()
        for i, v in more["v"]:
            values[i] = v
    if "N" in more:
        steps = [None] * n
    elif "s" in more:
        steps = steps.tolist()
        for i in more["s"]:
            steps[i] = None
    from_lists = None
    if "l" in more:
        from_lists = [False] * n
        for i in more["l"]:
            from_lists[i] = True
    return values, steps, from_lists, more


def unpack(n: int, series: str, which: bytes | None, seqs: bytes, vals: bytes, steps: bytes, times: bytes,
           extra: str | None) -> list[Metric]:
    """The `Metric` records of one chunk, in write order, exactly as they were packed."""
    pairs = [tuple(p) for p in json.loads(series)]
    if which is None:
        name, writer = pairs[0]
        names: Any = repeat(name, n)
        writers: Any = repeat(writer, n)
    else:
        idx = _array("I", which)
        names = [pairs[i][0] for i in idx]
        writers = [pairs[i][1] for i in idx]
    values, step_list, flagged, more = _with_exceptions(n, _array("d", vals), _array("q", steps), extra)
    from_lists: Any = repeat(False, n) if flagged is None else flagged
    descriptions: Any = repeat("", n)
    if "d" in more:
        descriptions = [""] * n
        for i, d in more["d"]:
            descriptions[i] = d
    return list(map(_new_metric, zip(names, _array("q", seqs), values, step_list, _array("q", times),
                                     from_lists, descriptions, writers)))


class ColumnsBuilder:
    """Gathers the points of a run's chunks (only those of metric `name`, if given) as
    `MetricColumns`, exactly as they were packed: numbers are copied as arrays, and the
    per-point name, writer and from_list columns are built once at the end (one allocation each
    when the run holds one series), never per point in Python."""

    def __init__(self, name: str | None = None) -> None:
        self.wanted = name
        self.seq, self.time = array("q"), array("q")
        self.value: Any = array("d")  # a list once a value that is not a float appears
        self.step: Any = array("q")  # a list once a None step appears
        #: Per piece of points: (name or per-point names, writer or per-point writers, from_list
        #: per point or None (all False), count).
        self.pieces: list[tuple[Any, Any, list[bool] | None, int]] = []

    def _numbers(self, seqs: Any, values: Any, steps: Any, times: Any) -> None:
        if type(values) is list and type(self.value) is not list:
            self.value = self.value.tolist()
        if type(steps) is list and type(self.step) is not list:
            self.step = self.step.tolist()
        self.seq.extend(seqs)
        self.value.extend(values)
        self.step.extend(steps)
        self.time.extend(times)

    def add_points(self, points: Sequence[tuple]) -> None:
        """Points given one by one: (name, seq, value, step, time, from_list, writer) tuples."""
        if points:
            name, seq, value, step, time, from_list, writer = map(list, zip(*points))
            self._numbers(seq, value, step, time)
            self.pieces.append((name, writer, from_list, len(points)))

    def add_chunk(self, n: int, series: str, which: bytes | None, seqs: bytes, vals: bytes, steps: bytes,
                  times: bytes, extra: str | None) -> None:
        """The points of one stored chunk."""
        pairs = [tuple(p) for p in json.loads(series)]
        keep: list[bool] | None = None
        if which is None:
            if self.wanted is not None and pairs[0][0] != self.wanted:
                return
            names: Any = pairs[0][0]
            writers: Any = pairs[0][1]
        else:
            idx = _array("I", which)
            if self.wanted is not None:
                wanted = {i for i, (metric, _) in enumerate(pairs) if metric == self.wanted}
                if not wanted:
                    return
                keep = [i in wanted for i in idx]
            names = [pairs[i][0] for i in idx]
            writers = [pairs[i][1] for i in idx]
        if which is None and extra is None and not _SWAP and type(self.value) is not list \
                and type(self.step) is not list:  # the common chunk: four copies of bytes
            for column, blob in ((self.seq, seqs), (self.value, vals), (self.step, steps), (self.time, times)):
                column.frombytes(blob)
            self.pieces.append((names, writers, None, n))
            return
        values, step_list, from_lists, _ = _with_exceptions(n, _array("d", vals), _array("q", steps), extra)
        seq_list: Any = _array("q", seqs)
        time_list: Any = _array("q", times)
        if keep is not None:
            names, writers = (list(compress(c, keep)) for c in (names, writers))
            seq_list, time_list, values, step_list = (
                list(compress(c, keep)) if type(c) is list else array(c.typecode, compress(c, keep))
                for c in (seq_list, time_list, values, step_list))
            from_lists = None if from_lists is None else list(compress(from_lists, keep))
            n = len(names)
        self._numbers(seq_list, values, step_list, time_list)
        self.pieces.append((names, writers, from_lists, n))

    def columns(self) -> MetricColumns:
        """The gathered points."""
        return MetricColumns(self._per_point(0), self.seq, self.value, self.step, self.time,
                             self._per_point(2, False), self._per_point(1))

    def _per_point(self, field: int, default: Any = None) -> Sequence[Any]:
        """One per-point column from the pieces: a piece holds a list, or one value for all its
        points (None: `default`)."""
        constants = [piece[field] for piece in self.pieces if type(piece[field]) is not list]
        total = sum(piece[3] for piece in self.pieces)
        if len(constants) == len(self.pieces) and len(set(constants)) == 1:
            value = constants[0]
            return Same(default if value is None else value, total)
        out: list[Any] = []
        for piece in self.pieces:
            value = piece[field]
            out.extend(value if type(value) is list else [default if value is None else value] * piece[3])
        return out

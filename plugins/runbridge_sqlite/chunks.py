"""Metric points packed as columns: one database row per written batch instead of one per point.

A chunk holds the `Metric` records of one batch in write order as contiguous little-endian arrays
(seq and step int64, value float64, time int64 µs), the (name, writer) series they belong to, and
an index array saying which series each point is in (left out when the batch has one series).
Whatever a float array cannot say exactly is kept in a small JSON side form, only when present:
values that are not floats (ints of any size, bools, str, None), None steps, `from_list` and
descriptions. For the common all-float batch, packing and unpacking loop in C, not in Python.
"""

from __future__ import annotations

import json
import sys
from array import array
from functools import partial
from itertools import compress, repeat
from operator import itemgetter
from typing import Any, Sequence

from runbridge.records import Metric, MetricColumns

_SWAP = sys.byteorder != "little"
_new_metric = partial(tuple.__new__, Metric)
_NAME, _SEQ, _VALUE, _STEP, _TIME, _FROM_LIST, _DESCRIPTION, _WRITER = map(itemgetter, range(8))


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


def pack(metrics: Sequence[tuple]) -> tuple:
    """The chunk columns (n, series, which, seqs, vals, steps, times, extra) of `metrics`."""
    n = len(metrics)
    names = list(map(_NAME, metrics))
    writers = list(map(_WRITER, metrics))
    which = None
    if len(set(names)) == 1 and len(set(writers)) == 1:
        series = [(names[0], writers[0])]
    else:
        pairs = list(zip(names, writers))
        series = list(dict.fromkeys(pairs))
        index = {pair: i for i, pair in enumerate(series)}
        which = _blob(array("I", map(index.__getitem__, pairs)))
    values = list(map(_VALUE, metrics))
    steps = list(map(_STEP, metrics))
    extra: dict[str, Any] = {}
    if set(map(type, values)) == {float}:
        vals = array("d", values)
    else:  # exact types ride in JSON: ints of any size, bools, str and None keep their type there
        vals = array("d", [v if type(v) is float else 0.0 for v in values])
        extra["v"] = [[i, v] for i, v in enumerate(values) if type(v) is not float]
    if None in steps:
        extra["s"] = [i for i, s in enumerate(steps) if s is None]
        steps = [0 if s is None else s for s in steps]
    if any(map(_FROM_LIST, metrics)):
        extra["l"] = [i for i, m in enumerate(metrics) if m.from_list]
    if any(map(_DESCRIPTION, metrics)):
        extra["d"] = [[i, m.description] for i, m in enumerate(metrics) if m.description]
    return (n, json.dumps(series, ensure_ascii=False), which, _blob(array("q", map(_SEQ, metrics))), _blob(vals),
            _blob(array("q", steps)), _blob(array("q", map(_TIME, metrics))),
            json.dumps(extra, ensure_ascii=False) if extra else None)


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
    values: Any = _array("d", vals)
    step_list: Any = _array("q", steps)
    from_lists: Any = repeat(False, n)
    descriptions: Any = repeat("", n)
    if extra is not None:
        more = json.loads(extra)
        if "v" in more:
            values = values.tolist()
            for i, v in more["v"]:
                values[i] = v
        if "s" in more:
            step_list = step_list.tolist()
            for i in more["s"]:
                step_list[i] = None
        if "l" in more:
            from_lists = [False] * n
            for i in more["l"]:
                from_lists[i] = True
        if "d" in more:
            descriptions = [""] * n
            for i, d in more["d"]:
                descriptions[i] = d
    return list(map(_new_metric, zip(names, _array("q", seqs), values, step_list, _array("q", times),
                                     from_lists, descriptions, writers)))


def new_columns() -> MetricColumns:
    """Empty columns for `unpack_into`: int columns as arrays, the rest as lists."""
    return MetricColumns([], array("q"), [], [], array("q"), [], [])


def unpack_into(out: MetricColumns, n: int, series: str, which: bytes | None, seqs: bytes, vals: bytes,
                steps: bytes, times: bytes, extra: str | None, name: str | None = None) -> MetricColumns:
    """Append the points of one chunk (only those of metric `name`, if given) to the columns
    `out`, exactly as they were packed; the int columns are copied as arrays, not per point.
    Returns `out`, with `step` turned into a list once a None step appears."""
    pairs = [tuple(p) for p in json.loads(series)]
    keep: list[bool] | None = None
    if which is None:
        if name is not None and pairs[0][0] != name:
            return out
        names: list[str] = [pairs[0][0]] * n
        writers: list[str] = [pairs[0][1]] * n
    else:
        idx = _array("I", which)
        if name is not None:
            wanted = {i for i, (metric, _) in enumerate(pairs) if metric == name}
            if not wanted:
                return out
            keep = [i in wanted for i in idx]
        names = [pairs[i][0] for i in idx]
        writers = [pairs[i][1] for i in idx]
    values: list[Any] = _array("d", vals).tolist()
    step_list: Any = _array("q", steps)
    from_lists: list[bool] | None = None
    if extra is not None:
        more = json.loads(extra)
        for i, v in more.get("v", ()):
            values[i] = v
        if "s" in more:
            step_list = step_list.tolist()
            for i in more["s"]:
                step_list[i] = None
        if "l" in more:
            from_lists = [False] * n
            for i in more["l"]:
                from_lists[i] = True
    seq_list: Any = _array("q", seqs)
    time_list: Any = _array("q", times)
    if keep is not None:
        names, writers, values = (list(compress(c, keep)) for c in (names, writers, values))
        seq_list, time_list = (array("q", compress(c, keep)) for c in (seq_list, time_list))
        step_list = list(compress(step_list, keep)) if type(step_list) is list else array("q", compress(step_list, keep))
        from_lists = None if from_lists is None else list(compress(from_lists, keep))
    count = len(names)
    if type(step_list) is list and type(out.step) is not list:
        out = out._replace(step=out.step.tolist())
    out.name.extend(names)
    out.seq.extend(seq_list)
    out.value.extend(values)
    out.step.extend(step_list)
    out.time.extend(time_list)
    out.from_list.extend(from_lists if from_lists is not None else repeat(False, count))
    out.writer.extend(writers)
    return out

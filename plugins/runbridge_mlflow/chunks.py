"""The exact record stream's files, pure (no I/O, no MLflow): chunk names and flags, and the
JSON-lines format of chunks and snapshots.

A chunk is one write call's records: each run of consecutive metrics one JSON line of columns
(`_metrics_block`), every other record one line in the exact form of
`runbridge.records.record_to_json`. A column of only floats, or only ints that fit 64 bits, is
written packed: base64 of its little-endian float64/int64 array, exact bit for bit (-0.0, NaN,
±inf) and about 20 times cheaper to write and read than JSON numbers. Such a block says
``"type": "PackedMetrics"``, so that an older runbridge refuses it instead of misreading it.
Blocks of JSON lists (``"Metrics"``) and chunks of one line per metric, as earlier versions
wrote them, read too. A snapshot is a header line naming the chunks it covers, then a chunk.
"""

from __future__ import annotations

import json
import math
import re
import sys
from array import array
from base64 import b64decode, b64encode
from typing import Any, Iterable, Sequence

from runbridge.batch import VALUE, point_columns, series_codes
from runbridge.records import Metric, Record, Row, record_from_dict, record_to_json

ARTIFACT_DIR = "runbridge"
RECORDS_DIR = "runbridge/records"
SNAPSHOTS_DIR = "runbridge/snapshots"
#: end_run writes a snapshot (the whole stream in one file) when this many chunks are uncovered
SNAPSHOT_MIN_CHUNKS = 32
#: ``<time ns>-<pid>-<n>[-<flags>].jsonl``; flags say what end_run must turn into artifacts:
#: ``r`` the chunk holds table rows, ``s`` string metrics, ``S`` a series of strings of one name.
CHUNK_RE = re.compile(r"^\d{20}-\d+-\d+(-[a-zA-Z]+)?\.jsonl$")


def chunk_name(time_ns: int, pid: int, counter: int, flags: str = "") -> str:
    """Chunk files sort in write order (time first, across processes); see `CHUNK_RE`."""
    return f"{time_ns:020d}-{pid}-{counter}{'-' + flags if flags else ''}.jsonl"


def chunk_flags(records: Iterable[Record]) -> str:
    """The flags of a chunk holding `records` (`CHUNK_RE`)."""
    rows = False
    strings: set[str] = set()
    series = False
    for rec in records:
        kind = type(rec)
        if kind is Row:
            rows = True
        elif kind is Metric and type(rec.value) is str:
            series = series or rec.name in strings
            strings.add(rec.name)
    return ("r" if rows else "") + ("S" if series else "s" if strings else "")


def flags_of(chunk: str) -> str:
    """The flags in a chunk's file name ('' for none)."""
    parts = chunk[:-len(".jsonl")].split("-")
    return parts[3] if len(parts) > 3 else ""


_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_METRIC_FIELDS = Metric._fields


def _record_json(rec: Record) -> str:
    """`record_to_json(rec)`, with a fast path for the common case (a metric)."""
    if type(rec) is Metric:
        value = rec.value
        if type(value) is float and not math.isfinite(value):
            value = {"$float": repr(value)}
        return _ENCODE({"type": "Metric", "name": rec.name, "seq": rec.seq, "value": value,
                        "step": rec.step, "time": rec.time, "from_list": rec.from_list,
                        "description": rec.description, "writer": rec.writer})
    return record_to_json(rec)


def _record_from(data: dict[str, Any]) -> Record:
    """`record_from_dict(data)`, with a fast path for metrics."""
    if data.get("type") == "Metric" and len(data) == 9:
        value = data["value"]
        if type(value) is dict:
            value = float(value["$float"])
        return Metric(data["name"], data["seq"], value, data["step"], data["time"], data["from_list"],
                      data["description"], data["writer"])
    return record_from_dict(data)


#: What a column of a metrics block holds as plain JSON (non-finite floats go in its "float" list).
_COLUMN_TYPES = (float, int, str, bool, type(None))


_LITTLE = sys.byteorder == "little"
#: A packed column's prefix and the `array` type code it holds.
_PACKED = {"f8:": "d", "i8:": "q"}
_NONE = "nil:"  # a column of None only (the steps of `run.log` without a step)


def _packed(column: list, kinds: set | None = None) -> str | list:
    """`column` as ``f8:``/``i8:`` plus base64 of its little-endian array when it holds only
    floats, or only ints (not bools) that fit 64 bits, ``nil:`` when only None; else the list
    itself (JSON). `kinds`: the column's value types, when the caller has them already."""
    if kinds is None:
        kinds = set(map(type, column))
    if kinds == _NONE_ONLY:
        return _NONE
    if kinds == {float}:
        prefix, packed = "f8:", array("d", column)
    elif kinds == {int}:
        try:
            prefix, packed = "i8:", array("q", column)
        except OverflowError:
            return column
    else:
        return column
    if not _LITTLE:
        packed.byteswap()
    return prefix + b64encode(packed).decode("ascii")


def _unpacked(column: str | list, n: int) -> list:
    """Inverse of `_packed` (`n`: the column's length)."""
    if type(column) is not str:
        return column
    if column == _NONE:
        return [None] * n
    packed = array(_PACKED[column[:3]], b64decode(column[3:]))
    if not _LITTLE:
        packed.byteswap()
    return packed.tolist()


def _metrics_block(metrics: Sequence[tuple]) -> str:
    """Consecutive metric records (`Metric`s or their plain field tuples) as one JSON line of
    columns (one line per flushed batch instead of one per point: reading decodes arrays of
    numbers, not a dict per point). Keys: ``series`` [[name, writer], ...], ``which`` the series
    of each point (absent for one series), ``seq``, ``value``, ``step``, ``time`` (each packed
    when it can be, `_packed`); sparse: ``float`` [[position, "nan"|"inf"|"-inf"]] for a value
    column that stays a list, ``list`` positions logged by `log_list`, ``desc`` [[position,
    description]] where not "". Built from columns, with no loop per point in Python."""
    return _block_of_columns(point_columns(metrics), None)


def _block_of_columns(columns: list[list], value_kinds: set | None) -> str:
    """`_metrics_block` of a batch's `point_columns` (`value_kinds`: the value column's types)."""
    names, seqs, values, steps, times, from_lists, descriptions, writers = columns
    block: dict[str, Any] = {"type": "PackedMetrics"}
    if len(set(names)) == 1 and len(set(writers)) == 1:
        block["series"] = [[names[0], writers[0]]]
    else:
        which, series = series_codes(names, writers)
        block["series"] = [list(k) for k in series]
        block["which"] = _packed(which)
    block["seq"] = _packed(seqs)
    value = _packed(values, value_kinds)
    special = []
    if type(value) is list:
        try:
            finite = all(map(math.isfinite, values))
        except (OverflowError, TypeError):  # an int beyond a float's range, a string, None
            finite = False
        special = [] if finite else [[i, repr(v)] for i, v in enumerate(values)
                                     if type(v) is float and not math.isfinite(v)]
        for i, _ in special:
            values[i] = None
    block["value"] = value
    block["step"] = _packed(steps)
    block["time"] = _packed(times)
    if special:
        block["float"] = special
    if any(from_lists):
        block["list"] = [i for i, flag in enumerate(from_lists) if flag]
    if any(descriptions):
        block["desc"] = [[i, d] for i, d in enumerate(descriptions) if d != ""]
    return _ENCODE(block)


def _metrics_from_block(block: dict[str, Any]) -> list[Metric]:
    """Inverse of `_metrics_block` (and of the unpacked ``Metrics`` blocks written before)."""
    seqs = _unpacked(block["seq"], 0)  # ints: a list or packed, never "nil:"
    n = len(seqs)
    series = block["series"]
    which = block.get("which")
    if which is None:
        names, writers = [series[0][0]] * n, [series[0][1]] * n
    else:
        which = _unpacked(which, n)
        names = [series[w][0] for w in which]
        writers = [series[w][1] for w in which]
    values = _unpacked(block["value"], n)
    for i, text in block.get("float", ()):
        values[i] = float(text)
    from_list = [False] * n
    for i in block.get("list", ()):
        from_list[i] = True
    descriptions = [""] * n
    for i, text in block.get("desc", ()):
        descriptions[i] = text
    return list(map(Metric._make, zip(names, seqs, values, _unpacked(block["step"], n),
                                      _unpacked(block["time"], n), from_list, descriptions, writers)))


_BLOCK_TYPES = ("PackedMetrics", "Metrics")
_NONE_ONLY = {type(None)}
_NUMBERS = {float, int, bool}


def encode_points(points: Sequence[tuple]) -> bytes | None:
    """The chunk `encode_chunk` makes of scalar points (plain tuples or `Metric`s) whose values
    are all ints, floats or bools, with no record made per point; None for anything else
    (strings and None take the general path, whose chunk name flags them)."""
    if not points:
        return None
    columns = point_columns(points)
    kinds = set(map(type, columns[VALUE]))
    if not kinds <= _NUMBERS:
        return None
    return _block_of_columns(columns, kinds).encode("utf-8") + b"\n"


def encode_chunk(records: Iterable[Record]) -> bytes:
    """Records as JSON lines: each run of consecutive metrics whose values JSON holds as one
    columnar line (`_metrics_block`), every other record one `record_to_json` line."""
    lines: list[str] = []
    run: list[Metric] = []
    for rec in records:
        if type(rec) is Metric and type(rec.value) in _COLUMN_TYPES:
            run.append(rec)
            continue
        if run:
            lines.append(_metrics_block(run))
            run = []
        lines.append(_record_json(rec))
    if run:
        lines.append(_metrics_block(run))
    return "\n".join(lines).encode("utf-8") + b"\n"


def decode_chunk(data: bytes | str) -> list[Record]:
    """Inverse of `encode_chunk`; also reads chunks of one `record_to_json` line per record (as
    runbridge wrote them before metrics blocks)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    lines = [line for line in text.split("\n") if line]
    if not lines:
        return []
    out: list[Record] = []
    for item in json.loads("[" + ",".join(lines) + "]"):
        if item.get("type") in _BLOCK_TYPES:
            out.extend(_metrics_from_block(item))
        else:
            out.append(_record_from(item))
    return out


def encode_snapshot(chunks: Sequence[str], records: Iterable[Record]) -> bytes:
    """The whole stream in one file: a header line naming the chunks it covers, then records."""
    header = json.dumps({"covers": list(chunks)}).encode("ascii") + b"\n"
    return header + encode_chunk(records)


def decode_snapshot(data: bytes) -> tuple[set[str], list[Record]]:
    header, _, rest = data.partition(b"\n")
    return set(json.loads(header)["covers"]), decode_chunk(rest)

"""Reading runbridge's own event files fast: numeric metrics decoded from their bytes by template.

Most events of a long run are float (or int) metrics that differ from the previous event of the same
metric only in wall time, step and value. The first such event of a shape is parsed with
protobuf (`translate.decode_own`); its bytes become a template (everything from the summary up to
the exact value, and the exact value's metadata after it). Each later event that matches the
template byte for byte is decoded with a few slices and ``struct`` unpacks instead of a protobuf
parse and a dozen message-attribute reads. Anything else takes the protobuf path, so the records
are the same either way. The garbage collector is paused while the records are built (its passes
over a growing heap of records are where reading used to slow down under load).
"""

from __future__ import annotations

import struct
import warnings
from typing import Iterable, Iterator

from tensorboard.compat.proto import event_pb2, types_pb2

from runbridge.records import Metric, Record

from . import tfrecord, translate
from .fastwrite import read_varint

_DOUBLE_TENSOR = b"\x08\x02\x12\x002\x08"  # dtype DT_DOUBLE, empty shape, one packed double
_INT64_TENSOR = b"\x08\x09\x12\x00R"  # dtype DT_INT64, empty shape, packed int64s (length follows)


def summary_event(path: object, blob: bytes) -> event_pb2.Event | None:
    """The Event in `blob` if it carries a summary; None otherwise, with an
    `EventFileDamageWarning` naming the file when the bytes are not an Event at all."""
    try:
        event = event_pb2.Event.FromString(blob)
    except Exception as exc:  # noqa: BLE001 - a record with a valid checksum but bad contents
        warnings.warn(tfrecord.EventFileDamageWarning(
            f"event file {path}: a record ({len(blob)} bytes) is not an Event ({exc}); skipped it"),
            stacklevel=3)
        return None
    return event if event.HasField("summary") else None


def _summary_at(blob: bytes) -> tuple[int, int] | None:
    """(step, offset of the summary field) of an event with a wall time, or None."""
    if len(blob) < 10 or blob[0] != 0x09:
        return None
    if blob[9] == 0x10:
        step, p = read_varint(blob, 10)
        if step >= 1 << 63:
            return None
    else:
        step, p = 0, 9
    return (step, p) if p < len(blob) and blob[p] == 0x2A else None


class _Template:
    """The bytes every event of one metric shares (see the module docstring): `prefix` up to the
    exact value, `width` bytes of value (a double, or an int64 varint), then `meta`."""

    __slots__ = ("prefix", "value_at", "width", "is_int", "meta", "name", "flag", "writer")

    def __init__(self, prefix: bytes, width: int, is_int: bool, meta: bytes, name: str, flag: bytes, writer: str):
        self.prefix, self.width, self.is_int, self.meta = prefix, width, is_int, meta
        self.name, self.flag, self.writer = name, flag, writer
        self.value_at = len(prefix)


def _template(blob: bytes, ev: event_pb2.Event) -> _Template | None:
    """The template of `blob` if it is a metric the fast path can decode (a float, or an int in
    the int64 range), else None."""
    values = ev.summary.value
    if not values:
        return None
    v = values[0]
    dtype = v.tensor.dtype
    if not v.tag.startswith(translate.EXACT_PREFIX) or dtype not in (types_pb2.DT_DOUBLE, types_pb2.DT_INT64):
        return None
    content = v.metadata.plugin_data.content
    flag = content[:1]
    if content and flag not in (translate.STEP_IS_SEQ, translate.NO_STEP):
        return None
    at = _summary_at(blob)
    if at is None:
        return None
    _, p = at
    _, q = read_varint(blob, p + 1)  # summary length
    if blob[q] != 0x0A:
        return None
    length0, start0 = read_varint(blob, q + 1)  # the first value: the exact one
    end0 = start0 + length0
    if dtype == types_pb2.DT_DOUBLE:
        found = blob.find(_DOUBLE_TENSOR, start0, end0)
        value_at, width = found + len(_DOUBLE_TENSOR), 8
        ok = found >= 0 and len(v.tensor.double_val) == 1 and \
            blob[value_at:value_at + 8] == struct.pack("<d", v.tensor.double_val[0])
    else:
        found = blob.find(_INT64_TENSOR, start0, end0)
        value_at = found + len(_INT64_TENSOR) + 1
        width = blob[value_at - 1] if found >= 0 else 0
        ok = found >= 0 and len(v.tensor.int64_val) == 1 and 0 < width <= 10 and \
            _int64_at(blob, value_at) == (v.tensor.int64_val[0], value_at + width)
    if not ok:
        return None
    return _Template(blob[p:value_at], width, dtype == types_pb2.DT_INT64, blob[value_at + width:end0],
                     v.tag[len(translate.EXACT_PREFIX):], flag, content[1:].decode("utf-8", "surrogatepass"))


def _int64_at(data: bytes, p: int) -> tuple[int, int]:
    """(value, offset after it) of the int64 varint at `p` (negative ones take 10 bytes)."""
    value, end = read_varint(data, p)
    return (value - (1 << 64) if value >= 1 << 63 else value), end


def decode_file(path: str) -> Iterator[tuple[float, Record]]:
    """(event wall time, record) of every record in one of runbridge's own event files, in order."""
    unpack_from = struct.unpack_from
    templates: list[_Template] = []
    STEP_IS_SEQ, NO_STEP = translate.STEP_IS_SEQ, translate.NO_STEP
    for blob in tfrecord.read_records(path):
        if len(blob) > 24 and blob[0] == 0x09:  # a wall time, and room for any step varint
            if blob[9] == 0x10:
                b = blob[10]  # the step's varint, inline up to 3 bytes (steps below 2,097,152)
                if b < 0x80:
                    step, p = b, 11
                else:
                    c = blob[11]
                    if c < 0x80:
                        step, p = (b & 0x7F) | (c << 7), 12
                    else:
                        d = blob[12]
                        if d < 0x80:
                            step, p = (b & 0x7F) | ((c & 0x7F) << 7) | (d << 14), 13
                        else:
                            step, p = read_varint(blob, 10)
            else:
                step, p = 0, 9
            for k, t in enumerate(templates):
                if blob.startswith(t.prefix, p):
                    at = p + t.value_at
                    if blob.startswith(t.meta, at + t.width) and step < 1 << 63:
                        wall = unpack_from("<d", blob, 1)[0]
                        value = _int64_at(blob, at)[0] if t.is_int else unpack_from("<d", blob, at)[0]
                        flag = t.flag
                        if flag == STEP_IS_SEQ:
                            rec = Metric(t.name, step, value, step, round(wall * 1e6), False, "", t.writer)
                        elif flag == NO_STEP:
                            rec = Metric(t.name, step, value, None, round(wall * 1e6), False, "", t.writer)
                        else:
                            rec = Metric(t.name, step, value, None, round(wall * 1e6))
                        if k:
                            templates.insert(0, templates.pop(k))
                        yield wall, rec
                        break
            else:
                p = -1  # no template matched: the protobuf path below
            if p >= 0:
                continue
        ev = summary_event(path, blob)
        if ev is None:
            continue
        for rec in translate.decode_own((ev,)):
            yield ev.wall_time, rec
        t = _template(blob, ev)
        if t is not None:
            templates.insert(0, t)
            del templates[16:]


def decode_files(paths: Iterable[str]) -> Iterator[Record]:
    """The records of several of runbridge's own event files of one run: each file in its own
    order, files merged by event time (a second process on the same run writes its own file)."""
    import heapq

    streams = [decode_file(p) for p in paths]
    if len(streams) == 1:
        for _, rec in streams[0]:
            yield rec
        return
    for _, rec in heapq.merge(*streams, key=lambda pair: pair[0]):
        yield rec

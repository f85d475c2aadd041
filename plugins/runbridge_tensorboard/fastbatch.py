"""A batch of float points framed as TFRecords with a few numpy operations per series.

`fastwrite.Templates` builds each float event of a series by concatenating bytes: a few Python
calls per point, plus a checksum call per record. For a batch of plain float points this module
does the same for the whole batch at once. Points of one series whose step takes the same number
of varint bytes make records of one length, so they are rows of one uint8 array filled from the
template (wall time, step, the exact double, the display float32); each record's masked CRC-32C
comes from the template's by linearity (CRC(t ^ d) = CRC(t) ^ CRC(d) ^ CRC(0) for messages of one
length), with a 256-entry table per varying byte, computed once per template. Any point the
template would not take, and every point before a series has its template, goes through
`Encoder.metric` (protobuf) as before, in order: the file is byte for byte the one the per-point
path writes (`tests/test_tensorboard_fastbatch.py`).
"""

from __future__ import annotations

import struct
from typing import Any, Sequence

import numpy as np

from runbridge.batch import metric_points, point_columns, series_codes
from runbridge.records import Metric, Record

from . import tfrecord
from .fastwrite import varint

#: Below this many points the per-point path is as fast: not worth the arrays.
MIN_POINTS = 64
_U32 = np.uint32
#: Checksum tables kept per (template, step length); each is 30 x 256 x 4 bytes at most.
MAX_CACHED_TABLES = 4096
_TABLES: dict[tuple[bytes, tuple[int, ...]], tuple[int, np.ndarray]] = {}


def framed(encoder: Any, records: Sequence[Record]) -> bytes | None:
    """The framed records of a batch of plain float points, or None for any other batch (the
    caller encodes it point by point). `encoder` is the file's `translate.Encoder`."""
    points, others = metric_points(records)
    n = len(points)
    if others or n < MIN_POINTS:
        return None
    names, seqs, values, steps, times, from_lists, descriptions, writers = point_columns(points)
    if set(map(type, values)) != {float} or any(from_lists) or any(descriptions) \
            or set(map(type, times)) != {int} or set(map(type, seqs)) != {int}:  # numpy would truncate
        return None
    no_step = steps.count(None) == n
    if not no_step and steps != seqs:  # a step that is not the seq: the per-point path says so
        return None
    codes, keys = _series(names, writers, no_step)
    templates = encoder.templates
    events: dict[int, bytes] = {}  # index -> an event protobuf serialized (the per-point path)
    _learn(encoder, points, codes, keys, events)
    value = np.array(values, dtype="<f8")
    step = np.array(seqs, dtype=np.int64)  # a step equals the seq in both step modes here
    time_us = np.array(times, dtype=np.int64)
    wall = time_us / 1e6
    with np.errstate(over="ignore", invalid="ignore"):
        shown = value.astype("<f4")
        fits = (np.isfinite(value) & np.isfinite(shown) & (step > 0) & (time_us != 0) & (time_us < 2 ** 53)
                & (np.round(wall * 1e6) == time_us))
    parts = [templates.parts(key) for key in keys]
    fits &= np.array([p is not None for p in parts])[codes]
    if events:
        fits[list(events)] = False
    for i in np.flatnonzero(~fits).tolist():
        if i not in events:
            events[i] = encoder.metric(tuple.__new__(Metric, points[i]))
    if fits.any():
        encoder.max_step = max(encoder.max_step, int(step[fits].max()))
    return _assemble(n, fits, codes, parts, events, wall, step, value, shown)


def _series(names: list, writers: list, no_step: bool) -> tuple[np.ndarray, list[tuple]]:
    """Each point's series number and the series' template keys (as `Encoder.metric` makes them)."""
    codes, series = series_codes(names, writers)
    return np.array(codes, dtype=np.int64), [(name, no_step, writer) for name, writer in series]


def _learn(encoder: Any, points: Sequence[tuple], codes: np.ndarray, keys: list[tuple],
           events: dict[int, bytes]) -> None:
    """Encode, in order, the points of every series without a template yet up to the point
    whose event settles it (protobuf's first events of a series carry its metadata)."""
    templates = encoder.templates
    open_codes = {c for c, key in enumerate(keys) if not templates.settled(key)}
    if not open_codes:
        return
    for i, c in enumerate(codes.tolist()):
        if c in open_codes:
            events[i] = encoder.metric(tuple.__new__(Metric, points[i]))
            if templates.settled(keys[c]):
                open_codes.discard(c)
                if not open_codes:
                    return


def _varint_length(step: np.ndarray) -> np.ndarray:
    length = np.ones(step.shape, dtype=np.int64)
    for j in range(1, 10):
        length += step >= (1 << (7 * j))
    return length


def _assemble(n: int, fits: np.ndarray, codes: np.ndarray, parts: list, events: dict[int, bytes],
              wall: np.ndarray, step: np.ndarray, value: np.ndarray, shown: np.ndarray) -> bytes:
    """Every record of the batch framed, in order: the template rows and the protobuf events."""
    size = np.zeros(n, dtype=np.int64)
    framed_events = {i: tfrecord.frame([e]) for i, e in events.items()}
    if framed_events:
        size[list(framed_events)] = [len(b) for b in framed_events.values()]
    groups = []
    fast = np.flatnonzero(fits)
    if fast.size:
        k = _varint_length(step[fast])
        group_of = codes[fast] * 16 + k
        for g in np.unique(group_of).tolist():
            rows = fast[group_of == g]
            layout = _Layout(parts[g // 16], g % 16)
            size[rows] = layout.record_size
            groups.append((rows, layout))
    ends = np.cumsum(size)
    out = np.empty(int(ends[-1]) if n else 0, dtype=np.uint8)
    starts = ends - size
    for rows, layout in groups:
        block = layout.fill(wall[rows], step[rows], value[rows], shown[rows])
        first = int(starts[rows[0]])
        if int(rows[-1]) - int(rows[0]) == rows.size - 1:  # consecutive points: one copy
            out[first:first + block.size] = block.ravel()
        else:
            out[starts[rows][:, None] + np.arange(layout.record_size)] = block
    for i, data in framed_events.items():
        start = int(starts[i])
        out[start:start + len(data)] = np.frombuffer(data, dtype=np.uint8)
    return out.tobytes()


class _Layout:
    """The TFRecord of one series' float event whose step has `k` varint bytes: the template
    row, where each varying field sits, and the checksum tables of its varying bytes."""

    def __init__(self, summary_parts: tuple[bytes, bytes, bytes], k: int) -> None:
        before, middle, after = summary_parts
        summary_size = len(before) + 8 + len(middle) + 4 + len(after)
        head = b"\x09" + bytes(8) + b"\x10" + bytes(k) + b"\x2a" + varint(summary_size)
        data = head + before + bytes(8) + middle + bytes(4) + after
        self.wall_at, self.step_at = 1, 10
        self.value_at = len(head) + len(before)
        self.shown_at = self.value_at + 8 + len(middle)
        self.k = k
        length = struct.pack("<Q", len(data))
        header = length + struct.pack("<I", tfrecord.mask(tfrecord.crc(length)))
        self.row = np.frombuffer(header + data + bytes(4), dtype=np.uint8)
        self.record_size = self.row.size
        self.data_at = len(header)
        varying = (*range(1, 9), *range(10, 10 + k), *range(self.value_at, self.value_at + 8),
                   *range(self.shown_at, self.shown_at + 4))
        self.varying = np.array(varying, dtype=np.int64)
        self.base, self.tables = _checksum_tables(data, varying)

    def fill(self, wall: np.ndarray, step: np.ndarray, value: np.ndarray, shown: np.ndarray) -> np.ndarray:
        m = wall.size
        block = np.tile(self.row, (m, 1))
        d = self.data_at
        block[:, d + self.wall_at:d + self.wall_at + 8] = wall.astype("<f8").view(np.uint8).reshape(m, 8)
        for j in range(self.k):
            byte = (step >> (7 * j)) & 0x7F
            if j < self.k - 1:
                byte |= 0x80
            block[:, d + self.step_at + j] = byte
        block[:, d + self.value_at:d + self.value_at + 8] = value.view(np.uint8).reshape(m, 8)
        block[:, d + self.shown_at:d + self.shown_at + 4] = shown.view(np.uint8).reshape(m, 4)
        crc = np.full(m, self.base, dtype=_U32)
        data_bytes = block[:, d + self.varying]
        for p in range(self.varying.size):
            crc ^= self.tables[p][data_bytes[:, p]]
        block[:, -4:] = tfrecord.mask_array(crc).astype("<u4").view(np.uint8).reshape(m, 4)
        return block


def _checksum_tables(data: bytes, varying: Sequence[int]) -> tuple[int, np.ndarray]:
    """The CRC-32C of `data` (its varying bytes zero) and, per varying byte position, what each
    byte value there adds to it: CRC(t ^ d) = CRC(t) ^ CRC(d) ^ CRC(zeros), and CRC(d) ^ CRC(zeros)
    is linear in d, so a table of 256 per position built from its 8 single-bit values."""
    cache_key = (data, tuple(varying))
    cached = _TABLES.get(cache_key)
    if cached is not None:
        return cached
    zeros = bytes(len(data))
    zero_crc = tfrecord.crc(zeros)
    byte_values = np.arange(256, dtype=np.int64)
    tables = np.zeros((len(varying), 256), dtype=_U32)
    for row, position in enumerate(varying):
        for bit in range(8):
            message = bytearray(zeros)
            message[position] = 1 << bit
            contribution = tfrecord.crc(bytes(message)) ^ zero_crc
            tables[row][(byte_values >> bit) & 1 == 1] ^= _U32(contribution)
    if len(_TABLES) >= MAX_CACHED_TABLES:  # a process writing very many series: start over
        _TABLES.clear()
    _TABLES[cache_key] = (tfrecord.crc(data), tables)
    return _TABLES[cache_key]

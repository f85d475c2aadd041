"""Scalar metric events written from byte templates, the mirror of `fastread`.

The event of a float metric differs from the previous event of the same series (same name, same
writer, same step mode) only in its wall time, its step and the value (as the exact double and the
display float). `Templates` learns a series' bytes from the second event protobuf serialized for
it (the first carries the tag's one-time metadata), checks that the template rebuilds that event
byte for byte, and from then on builds the series' events by concatenation. Anything the template
does not cover (ints, strings, non-finite values, step 0 or negative, descriptions, lists, times
that are not whole microseconds) goes through protobuf as before: the files are identical.
`fastbatch` uses the same templates for a whole batch of float points at once.
"""

from __future__ import annotations

import struct

_PACK_D = struct.Struct("<d").pack
_PACK_F = struct.Struct("<f").pack
_WALL_TIME = b"\x09"  # Event.wall_time: field 1, fixed64
_STEP = b"\x10"  # Event.step: field 2, varint
_SUMMARY = b"\x2a"  # Event.summary: field 5, length-delimited


def varint(n: int) -> bytes:
    """`n` (>= 0) as a protobuf varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(data: bytes, p: int) -> tuple[int, int]:
    """(value, offset after it) of the varint at `p`."""
    shift = value = 0
    while True:
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, p
        shift += 7


class Templates:
    """Per event file: the byte template of each float series, keyed by the caller."""

    def __init__(self) -> None:
        #: key -> (before the double, between double and float, after the float); None: never.
        self._by_key: dict[object, tuple[bytes, bytes, bytes] | None] = {}
        self._once: set[object] = set()

    def settled(self, key: object) -> bool:
        """Whether `key`'s template was learned or refused (after the series' second event)."""
        return key in self._by_key

    def parts(self, key: object) -> tuple[bytes, bytes, bytes] | None:
        """`key`'s summary template: the bytes before the double, between it and the float, after."""
        return self._by_key.get(key)

    def event(self, key: object, wall_time: float, step: int, value: float) -> bytes | None:
        """The event of `value` from the series' template; None when there is none (yet) or the
        value does not fit one (the caller serializes it with protobuf and calls `learn`)."""
        parts = self._by_key.get(key)
        if parts is None or not wall_time:
            return None
        try:
            shown = _PACK_F(value)
        except OverflowError:  # beyond float32: the display copy is inf, protobuf's path
            return None
        before, middle, after = parts
        summary = b"".join((before, _PACK_D(value), middle, shown, after))
        return b"".join((_WALL_TIME, _PACK_D(wall_time), _STEP, varint(step), _SUMMARY,
                         varint(len(summary)), summary))

    def learn(self, key: object, event: bytes, wall_time: float, step: int, value: float) -> None:
        """Learn `key`'s template from `event`, protobuf's bytes of (wall_time, step, value), on the
        series' second event; kept only if it rebuilds `event` exactly."""
        if key in self._by_key:
            return
        if key not in self._once:
            self._once.add(key)  # the first event carries the tag's metadata: not a template
            return
        self._by_key[key] = None
        try:
            summary = _summary_of(event)
            exact, shown = _PACK_D(value), _PACK_F(value)
        except (IndexError, ValueError, OverflowError):
            return
        if summary is None or summary.count(exact) != 1 or summary.count(shown) != 1:
            return
        i = summary.index(exact)
        j = summary.index(shown, i + 8) if shown in summary[i + 8:] else -1
        if j < 0:
            return
        self._by_key[key] = (summary[:i], summary[i + 8:j], summary[j + 4:])
        if self.event(key, wall_time, step, value) != event:
            self._by_key[key] = None


def _summary_of(event: bytes) -> bytes | None:
    """The serialized Summary of an event made of exactly wall_time, step and summary."""
    if event[:1] != _WALL_TIME or event[9:10] != _STEP:
        return None
    _, p = read_varint(event, 10)
    if event[p:p + 1] != _SUMMARY:
        return None
    size, p = read_varint(event, p + 1)
    summary = event[p:]
    return summary if len(summary) == size else None

"""TFRecord framing of event files: masked CRC-32C, writing, and a damage-tolerant reader.

An event file is a sequence of records ``len:u64le, masked_crc(len):u32le, data, masked_crc(data):u32le``.
TensorBoard's own reader (``tensorboard.compat.tensorflow_stub.pywrap_tensorflow``) checks the
same checksums with a pure-Python byte loop, and its loader stops silently at the first bad
record. This module computes checksums with google-crc32c (C, one call per record; part of the
``tensorboard`` extra) or, without it, with numpy (the checksums of every record of a batch or a
file in a few vector operations), compares them for a whole chunk at once and, on damage, warns with the file name and byte
offset and reads on where the format allows:

* a record cut off at the end of the file (a crash, or a writer caught mid-write): everything
  before it is read, and a warning names the offset;
* a record whose data checksum fails: skipped with a warning, reading goes on after it (its
  length was intact);
* a record whose length checksum fails: the length cannot be trusted, so the reader scans forward
  for the next offset where a whole valid record starts, and warns with both offsets.
"""

from __future__ import annotations

import struct
import warnings
from typing import Iterator, Sequence

import numpy as np

try:  # Google's CRC-32C in C (hardware-accelerated), one call per record
    import google_crc32c as _google_crc32c

    _crc_c = _google_crc32c.value if _google_crc32c.implementation == "c" else None
except ImportError:  # the numpy fallback below checks many records per vector operation
    _crc_c = None

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8


class EventFileDamageWarning(UserWarning):
    """An event file was truncated or corrupted; the message names the file and byte offset."""


def _make_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> np.uint32(1)) ^ np.uint32(_POLY), t >> np.uint32(1)).astype(np.uint32)
    return t


_TABLE = _make_table()
_TABLE_PY = _TABLE.tolist()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (pure Python; for short inputs)."""
    crc = 0xFFFFFFFF
    table = _TABLE_PY
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def crc(data: bytes) -> int:
    """CRC-32C of `data`, in C when google-crc32c is installed."""
    return _crc_c(data) if _crc_c is not None else crc32c(data)


def masked_crc32c(data: bytes) -> int:
    return mask(crc(data))


# --- vectorised CRC-32C ----------------------------------------------------------------------
# The raw CRC (register starting at 0, no final xor) is linear and ignores leading zero bytes,
# and starting the register at 0xFFFFFFFF equals xor-ing the first four message bytes with 0xFF.
# So each message is right-aligned (zero-padded in front) into P chunks of _CHUNK bytes, the raw
# CRC of every chunk is computed column by column for all chunks at once, and the chunk CRCs are
# combined pairwise with "append n zero bytes" operators (linear maps applied via 4 byte tables).

_CHUNK = 16
_SHIFT_TABLES: dict[int, np.ndarray] = {}


def _apply_shift(tables: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (tables[0][x & 0xFF] ^ tables[1][(x >> 8) & 0xFF]
            ^ tables[2][(x >> 16) & 0xFF] ^ tables[3][x >> 24])


def _tables_from_basis(images: np.ndarray) -> np.ndarray:
    """Byte tables of the linear map sending bit k to images[k]."""
    v = np.arange(256, dtype=np.uint32)
    out = np.zeros((4, 256), dtype=np.uint32)
    for j in range(4):
        for b in range(8):
            out[j] ^= np.where((v >> b) & 1, images[8 * j + b], np.uint32(0)).astype(np.uint32)
    return out


def _shift_tables(nbytes: int) -> np.ndarray:
    """Tables of the map: CRC register -> register after `nbytes` zero bytes (nbytes = CHUNK*2^k)."""
    tables = _SHIFT_TABLES.get(nbytes)
    if tables is not None:
        return tables
    if nbytes == _CHUNK:
        x = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
        for _ in range(_CHUNK):
            x = _TABLE[x & 0xFF] ^ (x >> np.uint32(8))
        tables = _tables_from_basis(x)
    else:
        half = _shift_tables(nbytes // 2)
        basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
        tables = _tables_from_basis(_apply_shift(half, _apply_shift(half, basis)))
    _SHIFT_TABLES[nbytes] = tables
    return tables


def _crc_same_length(msgs: Sequence[bytes], length: int) -> np.ndarray:
    """CRC-32C of messages that all have `length` (>= 4) bytes, vectorised."""
    k = len(msgs)
    block = np.frombuffer(b"".join(msgs), dtype=np.uint8).reshape(k, length)
    if length <= 256:
        cols = block.T.copy()
        cols[:4] ^= 0xFF  # register init 0xFFFFFFFF == first four bytes xor 0xFF
        crc = np.zeros(k, dtype=np.uint32)
        for j in range(length):
            crc = _TABLE[(crc ^ cols[j]) & 0xFF] ^ (crc >> np.uint32(8))
        return crc ^ np.uint32(0xFFFFFFFF)
    chunks = 1 << int(np.ceil(np.log2(-(-length // _CHUNK))))
    width = chunks * _CHUNK
    flat = np.zeros((k, width), dtype=np.uint8)
    flat[:, width - length:] = block
    flat[:, width - length:width - length + 4] ^= 0xFF
    cols = np.ascontiguousarray(flat.reshape(k * chunks, _CHUNK).T)
    crc = np.zeros(k * chunks, dtype=np.uint32)
    for j in range(_CHUNK):
        crc = _TABLE[(crc ^ cols[j]) & 0xFF] ^ (crc >> np.uint32(8))
    crc = crc.reshape(k, chunks)
    span = _CHUNK
    while crc.shape[1] > 1:
        crc = _apply_shift(_shift_tables(span), crc[:, 0::2]) ^ crc[:, 1::2]
        span *= 2
    return crc[:, 0] ^ np.uint32(0xFFFFFFFF)


def masked_crc32c_many(msgs: Sequence[bytes]) -> list[int]:
    """Masked CRC-32C of every message, computed together (fast for many or long messages)."""
    n = len(msgs)
    if n < 8 and sum(map(len, msgs)) < 256:
        return [masked_crc32c(m) for m in msgs]
    out = [0] * n
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(msgs):
        groups.setdefault(len(m), []).append(i)
    for length, sel in groups.items():
        if length < 4 or (len(sel) == 1 and length < 64):
            for i in sel:
                out[i] = masked_crc32c(msgs[i])
            continue
        masked = mask_array(_crc_same_length([msgs[i] for i in sel], length))
        for i, m in zip(sel, masked.tolist()):
            out[i] = m
    return out


# --- writing -----------------------------------------------------------------------------------

def frame(records: Sequence[bytes]) -> bytes:
    """The TFRecord framing of `records`, ready to append to an event file in one write."""
    pack = struct.pack
    parts: list[bytes] = []
    if _crc_c is not None:
        crc = _crc_c
        for r in records:
            h = pack("<Q", len(r))
            parts += (h, pack("<I", mask(crc(h))), r, pack("<I", mask(crc(r))))
        return b"".join(parts)
    headers = [pack("<Q", len(r)) for r in records]
    crcs = masked_crc32c_many(headers + list(records))
    n = len(records)
    for i, r in enumerate(records):
        parts.append(headers[i])
        parts.append(pack("<I", crcs[i]))
        parts.append(r)
        parts.append(pack("<I", crcs[n + i]))
    return b"".join(parts)


# --- reading -----------------------------------------------------------------------------------

def _warn(path: str, message: str) -> None:
    warnings.warn(EventFileDamageWarning(f"event file {path}: {message}"), stacklevel=3)


def _recently_written(path: str) -> str:
    """A hint for a record cut off at the end of a file that a writer may still be appending to."""
    import os
    import time

    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return ""
    return f" (the file changed {age:.1f} s ago: a writer may still be appending to it)" if age < 10 else ""


def _past_bad_length(path: str, buf: bytes, base: int, at: int) -> int | None:
    """Where reading goes on after the record at `at` whose length checksum is wrong (the next
    intact record), warned about; None, also warned, when no intact record follows."""
    nxt = _resync(buf, at + 1)
    if nxt is None:
        _warn(path, f"corrupted record at byte offset {base + at} (bad length checksum); "
                    f"no intact record after it ({len(buf) - at} bytes not read)")
        return None
    _warn(path, f"corrupted record at byte offset {base + at} (bad length checksum); "
                f"skipped {nxt - at} bytes, reading on at offset {base + nxt}")
    return nxt


def _resync(buf: bytes, start: int) -> int | None:
    """The first offset >= start where a whole record with valid checksums begins, or None."""
    n = len(buf)
    if n - start < 16:
        return None
    arr = np.frombuffer(buf, dtype=np.uint8)
    # candidate offsets whose length checksum is valid: checksum every 8-byte window at once
    last = n - 16
    positions = np.arange(start, last + 1, dtype=np.int64)
    for lo in range(0, positions.size, 1 << 20):
        pos = positions[lo:lo + (1 << 20)]
        windows = arr[pos[:, None] + np.arange(8)]
        got = mask_array(_raw_crc_windows(windows)).tolist()
        stored = arr[pos[:, None] + np.arange(8, 12)].astype(np.uint32)
        stored = (stored[:, 0] | (stored[:, 1] << 8) | (stored[:, 2] << 16) | (stored[:, 3] << 24)).tolist()
        for k, (g, s) in enumerate(zip(got, stored)):
            if g != s:
                continue
            p = int(pos[k])
            (length,) = struct.unpack_from("<Q", buf, p)
            end = p + 12 + length + 4
            if end > n:
                continue
            (dcrc,) = struct.unpack_from("<I", buf, p + 12 + length)
            if masked_crc32c(buf[p + 12:p + 12 + length]) == dcrc:
                return p
    return None


def _raw_crc_windows(windows: np.ndarray) -> np.ndarray:
    w = windows.copy()
    w[:, :4] ^= 0xFF
    crc = np.zeros(w.shape[0], dtype=np.uint32)
    for j in range(w.shape[1]):
        crc = _TABLE[(crc ^ w[:, j]) & 0xFF] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(0xFFFFFFFF)


#: How much of an event file is read and checked at a time.
READ_CHUNK = 8 << 20


def _walk(buf: bytes, p: int) -> tuple[list[tuple[int, int]], int]:
    """The whole records of `buf` from offset `p` on, as (offset, length) pairs, and the offset
    where the walk stopped (a record that does not fit, or the end). Checksums are not checked."""
    unpack_from = struct.unpack_from
    n = len(buf)
    spans: list[tuple[int, int]] = []
    while n - p >= 12:
        (length,) = unpack_from("<Q", buf, p)
        end = p + 12 + length + 4
        if end > n:
            break
        spans.append((p, length))
        p = end
    return spans, p


def _u32_at(arr: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The little-endian u32 at each offset of the byte array `arr`."""
    b = arr[offsets[:, None] + np.arange(4)].astype(np.uint32)
    return b[:, 0] | (b[:, 1] << np.uint32(8)) | (b[:, 2] << np.uint32(16)) | (b[:, 3] << np.uint32(24))


def mask_array(crc: np.ndarray) -> np.ndarray:
    """`mask` of every CRC in an array (as uint64)."""
    c = crc.astype(np.uint64)
    return ((((c >> np.uint64(15)) | (c << np.uint64(17))) & np.uint64(0xFFFFFFFF))
            + np.uint64(_MASK_DELTA)) & np.uint64(0xFFFFFFFF)


def _checked(buf: bytes, spans: list[tuple[int, int]]) -> tuple[list[bytes], tuple[str, int] | None]:
    """The spans' payloads, and the first span whose ("header", i) or ("data", i) checksum fails
    (None if all hold); all checksums are computed in one batch."""
    payloads = [buf[s + 12:s + 12 + ln] for s, ln in spans]
    if _crc_c is None:
        return payloads, _first_bad_numpy(buf, spans, payloads)
    m = len(spans)
    if not m:
        return payloads, None
    starts = np.fromiter((s for s, _ in spans), np.int64, m)
    lengths = np.fromiter((ln for _, ln in spans), np.int64, m)
    arr = np.frombuffer(buf, dtype=np.uint8)
    header_ok = mask_array(np.fromiter(map(_crc_c, [buf[s:s + 8] for s, _ in spans]), np.uint32, m)) \
        == _u32_at(arr, starts + 8)
    data_ok = mask_array(np.fromiter(map(_crc_c, payloads), np.uint32, m)) == _u32_at(arr, starts + 12 + lengths)
    if header_ok.all() and data_ok.all():
        return payloads, None
    i = int(np.argmin(header_ok & data_ok))
    return payloads, ("header" if not header_ok[i] else "data", i)


def _first_bad_numpy(buf: bytes, spans: list[tuple[int, int]],
                     payloads: list[bytes]) -> tuple[str, int] | None:
    """`_checked`'s answer with numpy's vectorised CRC (without google-crc32c)."""
    unpack_from = struct.unpack_from
    got = masked_crc32c_many([buf[s:s + 8] for s, _ in spans] + payloads)
    m = len(spans)
    for i, (s, ln) in enumerate(spans):
        if got[i] != unpack_from("<I", buf, s + 8)[0]:
            return "header", i
        if got[m + i] != unpack_from("<I", buf, s + 12 + ln)[0]:
            return "data", i
    return None


def _length_is_damaged(buf: bytes, p: int) -> bool:
    """Whether the record header at `p` (whole in `buf`) fails its length checksum."""
    return masked_crc32c(buf[p:p + 8]) != struct.unpack_from("<I", buf, p + 8)[0]


def read_records(path: str) -> Iterator[bytes]:
    """Every intact record of the event file at `path`, in file order, warning on damage.

    Reads the file in chunks and checks each chunk's checksums together; at the first sign of
    damage it reads the rest of the file and recovers record by record (`_read_buffer`).
    """
    with open(path, "rb") as f:
        base = 0  # file offset of buf[0]
        buf = b""
        want = READ_CHUNK
        while True:
            chunk = f.read(want)
            at_eof = len(chunk) < want
            buf = buf + chunk if buf else chunk
            n = len(buf)
            spans, p = _walk(buf, 0)
            payloads, bad = _checked(buf, spans)
            yield from payloads[:len(spans) if bad is None else bad[1]]
            if bad is not None:
                s = spans[bad[1]][0]
                yield from _read_buffer(path, buf[s:] + f.read(), base + s)
                return
            if n - p >= 12:  # a record that does not fit: more bytes, or a damaged length
                damaged = _length_is_damaged(buf, p)
                need = -1 if damaged else p + 16 + struct.unpack_from("<Q", buf, p)[0] - n
            else:
                need = 12 - (n - p) if p < n else 0
            if need < 0 or (at_eof and p < n):
                yield from _read_buffer(path, buf[p:] + f.read(), base + p)
                return
            if at_eof:
                return
            base += p
            buf = buf[p:]
            want = max(READ_CHUNK, need)


def _read_buffer(path: str, buf: bytes, base: int) -> Iterator[bytes]:
    """Records of `buf` (the file from offset `base` on), recovering from damage with warnings."""
    n = len(buf)
    pos = 0
    while pos < n:
        spans, stop = _walk(buf, pos)  # optimistic pass: every checksum checked at once
        payloads, bad = _checked(buf, spans)
        yield from payloads[:len(spans) if bad is None else bad[1]]
        if bad is None:
            if stop < n:
                # is the tail a real record cut short, or garbage after a corrupted length?
                if stop + 12 <= n and _length_is_damaged(buf, stop):
                    nxt = _past_bad_length(path, buf, base, stop)
                    if nxt is None:
                        return
                    pos = nxt
                    continue
                _warn(path, f"truncated record at byte offset {base + stop} "
                            f"(the file ends {n - stop} bytes later, mid-record); read every whole record before it" + _recently_written(path))
            return
        kind, i = bad
        s, ln = spans[i]
        if kind == "data":
            _warn(path, f"corrupted record at byte offset {base + s} ({ln} bytes, data checksum mismatch): "
                        f"skipped it, reading on at offset {base + s + 12 + ln + 4}")
            pos = s + 12 + ln + 4
            continue
        nxt = _past_bad_length(path, buf, base, s)
        if nxt is None:
            return
        pos = nxt

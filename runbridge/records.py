"""The records every backend stores and gives back unchanged.

The front end (`Run`) turns each logging call into one of these immutable values; backends
persist them and return them from the `read` hook in write order. `shapes.fold` turns them into
the azureml `get_metrics` shapes. Times are integer microseconds since the Unix epoch (UTC).

Records are typed `NamedTuple`s rather than frozen dataclasses: equally immutable, but a million
of them (a long run read back) build in well under half the time. Use `record._replace(...)` to
derive a changed copy and `type(record) is Metric` to dispatch.

Identity. Several processes may write one run at once (data-parallel ranks, pool workers, a
submitted script and its supervisor). Each `Run` object that logs is a *writer* with an id unique
across processes (`new_writer_id`), and numbers its own records per name from 0: a `Metric`,
`Row` or `Image` is identified by ``(kind, name, writer, seq)`` (see `record_key`), whoever
stores, copies or replays it. Readers put each name's records in logging order: by time, then
writer, then seq (`in_logging_order`).
"""

from __future__ import annotations

import base64
import gc
import json
import math
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple, Sequence, Union

#: Scalar values a metric or table cell may hold, after the front end's conversion.
Scalar = Union[int, float, bool, str, None]

RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
CANCELED = "Canceled"
#: Every status a run can have; the last three are final.
STATUSES = (RUNNING, COMPLETED, FAILED, CANCELED)
FINAL_STATUSES = (COMPLETED, FAILED, CANCELED)

#: Names under this prefix are runbridge's own bookkeeping: hidden from get_tags/get_file_names.
RESERVED_PREFIX = "runbridge."


class RunInfo(NamedTuple):
    """A run's identity and lifecycle. `read` returns the current one first."""

    run_id: str
    experiment: str
    display_name: str | None = None
    parent_id: str | None = None
    status: str = RUNNING
    start_time: int = 0
    end_time: int | None = None
    #: Error details of a failed run (a message), else None.
    error: str | None = None


class Metric(NamedTuple):
    """One logged scalar: `log` writes one, `log_list` one per element (`from_list=True`)."""

    name: str
    seq: int
    value: Scalar
    step: int | None
    time: int
    from_list: bool = False
    description: str = ""
    #: The id of the writer (one logging `Run` object of one process) that numbered `seq`.
    writer: str = ""


class Row(NamedTuple):
    """One table row: `log_row` writes one, `log_table` one per row (`from_table=True`).

    `cells` is a tuple of (column, value) pairs in the order the user gave them.
    """

    name: str
    seq: int
    cells: tuple[tuple[str, Scalar], ...]
    time: int
    from_table: bool = False
    description: str = ""
    #: The id of the writer (one logging `Run` object of one process) that numbered `seq`.
    writer: str = ""


class Image(NamedTuple):
    """A metric whose value is a run file: an image (`log_image`) or a JSON metric
    (`log_confusion_matrix` & co., media type ``application/json``).

    The file itself is stored under `file_name` and listed by `get_file_names`. `data` holds the
    bytes on write; on read a backend may leave it None and serve the bytes with `fetch_file`.
    """

    name: str
    seq: int
    file_name: str
    media_type: str
    time: int
    step: int | None = None
    data: bytes | None = None
    description: str = ""
    #: The id of the writer (one logging `Run` object of one process) that numbered `seq`.
    writer: str = ""


class Tag(NamedTuple):
    """A tag set (value may be None: a valueless tag) or removed (`removed=True`)."""

    key: str
    value: str | None
    time: int
    removed: bool = False


class Property(NamedTuple):
    """A property: add-only, so one record per key."""

    key: str
    value: str | None
    time: int


class File(NamedTuple):
    """An uploaded run file under a run-relative `name`.

    On write exactly one of `source` (a local path to copy) or `data` (bytes) is set. On read a
    backend may set `source` to a local path it holds, or leave both None (use `fetch_file`).
    """

    name: str
    size: int
    sha256: str
    time: int
    source: str | None = None
    data: bytes | None = None


Record = Union[RunInfo, Metric, Row, Image, Tag, Property, File]


class RunRecords(NamedTuple):
    """What a backend holds of one run, as `Backend.read` gives it: the run's current `RunInfo`
    and its other records, in write order (per kind at least)."""

    info: RunInfo
    records: list[Record]

    def all(self) -> list[Record]:
        """The info first, then the records: the form the `read` hook returns."""
        return [self.info, *self.records]


class Same:
    """A column holding one value `n` times without a list of `n` references (a long run's
    name, writer, or from_list). A read-only sequence: len, index, count, iteration, slices."""

    __slots__ = ("value", "n")

    def __init__(self, value: Any, n: int) -> None:
        self.value, self.n = value, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        from itertools import repeat

        return repeat(self.value, self.n)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.value] * len(range(*index.indices(self.n)))
        if not -self.n <= index < self.n:
            raise IndexError("Same index out of range")
        return self.value

    def count(self, value: Any) -> int:
        return self.n if value == self.value else 0

    def tolist(self) -> list[Any]:
        return [self.value] * self.n

    def __repr__(self) -> str:
        return f"Same({self.value!r}, {self.n})"


class MetricColumns(NamedTuple):
    """Scalar metric points (`Metric` records) as columns, for reads of long runs: point i is
    ``(name[i], seq[i], value[i], step[i], time[i], from_list[i], writer[i])``, in write order.

    Any sequence will do (lists, ``array.array`` of ints, `Same` for one repeated value); `value`
    and `step` hold exact Python
    values (ints stay ints, None steps are None). No Python object per point is needed beyond
    the values themselves, and no description (the views built from columns do not show it)."""

    name: Sequence[str]
    seq: Sequence[int]
    value: Sequence[Scalar]
    step: Sequence[int | None]
    time: Sequence[int]
    from_list: Sequence[bool]
    writer: Sequence[str]


class RunColumns(NamedTuple):
    """What the `read_metrics` hook gives: a run's scalar points as columns, and its other
    metric records (`Row`, `Image`) as records, each part in write order."""

    metrics: MetricColumns
    records: list[Record]


class RunSummary(NamedTuple):
    """One run of a run list (`summarize_runs`): its info, current tags (reserved ones included),
    properties (reserved ones left out), and ``(last, min, max)`` of each metric's int and float
    values (NaN and bools left out; last in logging order)."""

    info: RunInfo
    tags: dict[str, str | None]
    properties: dict[str, str | None]
    metrics: dict[str, tuple[Any, Any, Any]]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a long run's values are built: a million
    acyclic objects would otherwise be traversed again and again by collections that can free
    none of them (several times the cost of building them). Restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


RECORD_TYPES: tuple[type, ...] = (RunInfo, Metric, Row, Image, Tag, Property, File)
_BY_NAME = {cls.__name__: cls for cls in RECORD_TYPES}


#: The record kinds that form per-name streams numbered by `seq` (per writer).
STREAM_TYPES: tuple[type, ...] = (Metric, Row, Image)


def new_writer_id() -> str:
    """A writer id: 12 random hex digits, unique across the processes writing one run."""
    import secrets

    return secrets.token_hex(6)


def record_key(record: Record) -> tuple:
    """The identity of a record within its run, the same in every backend.

    Streams: (kind, name, writer, seq). Files and properties are write-once per name/key. A tag
    operation is identified by everything it says (key, value, removal, time).
    """
    kind = type(record)
    if kind is Metric or kind is Row or kind is Image:
        return (kind.__name__, record.name, record.writer, record.seq)
    if kind is File:
        return ("File", record.name)
    if kind is Property:
        return ("Property", record.key)
    if kind is Tag:
        return ("Tag", record.key, record.value, record.removed, record.time)
    return ("RunInfo",)


def in_logging_order(records: list[Record]) -> list[Record]:
    """`records` with the stream records of several writers put in logging order (time, writer,
    seq); a run written by one writer is returned as it is (already in that order)."""
    writers = {r.writer for r in records if type(r) in STREAM_TYPES}
    if len(writers) <= 1:
        return records
    slots = [i for i, r in enumerate(records) if type(r) in STREAM_TYPES]
    ordered = sorted((records[i] for i in slots), key=lambda r: (r.time, r.writer, r.seq))
    out = list(records)
    for i, rec in zip(slots, ordered):
        out[i] = rec
    return out


def exactly_equal(a: Any, b: Any) -> bool:
    """Deep equality that also requires equal types (1 is not 1.0 or True), takes NaN as equal to
    NaN and tells -0.0 from 0.0: what "reads back exactly" means."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(exactly_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(exactly_equal(x, y) for x, y in zip(a, b))
    return a == b


def now_us() -> int:
    """The current time in integer microseconds since the epoch."""
    import time

    return time.time_ns() // 1000


# --- exact JSON form, for backends that store records as text (jsonl, MLflow, TensorBoard) ---

def _encode_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}  # 'nan', 'inf', '-inf'
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return [_encode_value(v) for v in value]
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "$float" in value:
            return float(value["$float"])
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    return value


def record_to_dict(record: Record) -> dict[str, Any]:
    """A JSON-safe dict that `record_from_dict` turns back into an equal record.

    Floats keep every bit (JSON floats are written with `repr`), NaN/inf and bytes are tagged.
    """
    out: dict[str, Any] = {"type": type(record).__name__}
    for name, value in zip(record._fields, record):
        out[name] = _encode_value(value)
    return out


def record_from_dict(data: dict[str, Any]) -> Record:
    """Inverse of `record_to_dict`."""
    cls = _BY_NAME[data["type"]]
    kwargs = {}
    for name in cls._fields:
        if name in data:
            value = _decode_value(data[name])
            if name == "cells":
                value = tuple((c[0], c[1]) for c in value)
            kwargs[name] = value
    return cls(**kwargs)


def record_to_json(record: Record) -> str:
    """One record as one line of JSON (strict: no bare NaN)."""
    return json.dumps(record_to_dict(record), ensure_ascii=False, allow_nan=False)


def record_from_json(text: str) -> Record:
    """Inverse of `record_to_json`."""
    return record_from_dict(json.loads(text))


__all__ = [
    "Scalar", "RunInfo", "Metric", "Row", "Image", "Tag", "Property", "File", "Record", "RunRecords",
    "MetricColumns", "Same", "RunColumns", "RunSummary", "collector_paused",
    "RECORD_TYPES", "STREAM_TYPES", "new_writer_id", "record_key", "in_logging_order", "STATUSES", "FINAL_STATUSES", "RUNNING", "COMPLETED", "FAILED", "CANCELED",
    "RESERVED_PREFIX", "now_us", "exactly_equal", "record_to_dict", "record_from_dict", "record_to_json",
    "record_from_json",
]

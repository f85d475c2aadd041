"""The records every backend stores and gives back unchanged.

The front end (`Run`) turns each logging call into one of these immutable values; backends
persist them and return them from the `read` hook in write order. `shapes.fold` turns them into
the azureml `get_metrics` shapes. Times are integer microseconds since the Unix epoch (UTC).

Records are typed `NamedTuple`s rather than frozen dataclasses: equally immutable, but a million
of them (a long run read back) build in well under half the time. Use `record._replace(...)` to
derive a changed copy and `type(record) is Metric` to dispatch.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, NamedTuple, Union

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
RECORD_TYPES: tuple[type, ...] = (RunInfo, Metric, Row, Image, Tag, Property, File)
_BY_NAME = {cls.__name__: cls for cls in RECORD_TYPES}


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
    "Scalar", "RunInfo", "Metric", "Row", "Image", "Tag", "Property", "File", "Record",
    "RECORD_TYPES", "STATUSES", "FINAL_STATUSES", "RUNNING", "COMPLETED", "FAILED", "CANCELED",
    "RESERVED_PREFIX", "now_us", "exactly_equal", "record_to_dict", "record_from_dict", "record_to_json",
    "record_from_json",
]

"""Pure translation between runbridge records and MLflow entities (no I/O, no client calls).

Longer than 400 lines because it holds the whole mapping in both directions (names, run fields,
metrics and lanes, batches within MLflow's limits, tables and string series), each rule next to
its inverse.

How a runbridge run lives in MLflow
-----------------------------------
* The run is an MLflow run in the experiment of the same name. MLflow picks its own run id; the
  runbridge id is kept in the reserved tag ``runbridge.run_id`` (runs plain MLflow wrote have no
  such tag: their runbridge id is their MLflow run id).
* Run name, status (FINISHED/FAILED/KILLED), start and end time are MLflow's own fields; the
  microsecond times are the tags ``runbridge.start_time`` / ``runbridge.end_time``, a failed
  run's error the tag ``runbridge.error``. A display name MLflow's run name cannot hold and an
  error longer than a tag are RunInfo records in the stream below. Child runs carry ``mlflow.parentRunId`` (``runbridge.parent_id`` only when the parent
  is not in MLflow). Earlier versions kept those values in more ``runbridge.*`` tags: still read.
* What MLflow users see natively: int/float metrics are MLflow metric history (step = the user's
  step, else the writer's per-name logging order ``seq``), tags are tags, properties are params,
  images and uploads are artifacts under their own names. A string metric's latest value is the
  tag ``metric.<name>``; a series of strings is also the text artifact ``metrics/<name>.txt``
  (written when the run ends, one ``<step>\t<value>`` line per value). Names MLflow rejects are
  written under an encoded key, with the original name in the manifest tag ``runbridge.key.<encoded>``.
* Exactness: every record of a write call is also appended, as JSON lines, to a new chunk
  artifact ``runbridge/records/<chunk>.jsonl`` (one file per write call, never re-written; the
  format is `runbridge_mlflow.chunks`). `read` replays those chunks, so ints, bools,
  strings, None, NaN/inf, float64 bits, rows, descriptions, long or None tag values and
  duplicate points come back exactly.
* Native timestamps never collide. MLflow's SQL store keys a point by (name, timestamp, step,
  value) and drops (or, under concurrency, refuses) a second equal point, which data-parallel
  ranks logging the same value at the same step in the same millisecond produce. Each writer of
  a run claims a *lane* (the param ``runbridge.writer.<n>`` = writer id; params cannot change,
  so a claim is atomic) and writes timestamps ``ms ≡ lane (mod LANES)``, at most LANES - 1 ms
  after the true time: two writers never share a timestamp. Within a writer, per name,
  (timestamp, step) is kept strictly increasing, a timestamp moved on by LANES ms only where a
  step repeats or goes back. Exact times come back from the stream.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Iterator, Sequence

from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import Param, RunTag

from runbridge.records import (
    CANCELED,
    COMPLETED,
    FAILED,
    RUNNING,
    File,
    Image,
    Metric,
    Property,
    Record,
    Row,
    RunInfo,
    Tag,
)

# --- reserved names ------------------------------------------------------------------------------
RESERVED = "runbridge."
# The tags runbridge writes (docs/backends.md lists them):
TAG_RUN_ID = "runbridge.run_id"  # every run: how a runbridge id finds its MLflow run
TAG_START = "runbridge.start_time"  # microseconds (MLflow keeps ms): exact times, and list order
TAG_END = "runbridge.end_time"  # the same, once the run ended
TAG_ERROR = "runbridge.error"  # a failed run's error (MLflow has no field for it)
TAG_PARENT = "runbridge.parent_id"  # only when the parent run is not in MLflow (no mlflow.parentRunId)
TAG_KEY_PREFIX = "runbridge.key."  # manifest: runbridge.key.<encoded key> = original name
# Tags of earlier versions, read (when they agree with MLflow's fields) and removed on the next write:
TAG_STATUS = "runbridge.status"
TAG_DISPLAY_NAME = "runbridge.display_name"
TAG_ERROR_TRUNCATED = "runbridge.error_truncated"
TAG_TABLES = "runbridge.tables"
LEGACY_TAGS = (TAG_STATUS, TAG_DISPLAY_NAME, TAG_ERROR_TRUNCATED, TAG_TABLES)
#: A string metric's latest value is the (user-visible) tag ``metric.<name>``.
STRING_TAG_PREFIX = "metric."
PARAM_LANE_PREFIX = "runbridge.writer."  # runbridge.writer.<lane> = the writer id that owns it
#: Timestamp lanes: writers of one run never share a native timestamp (up to this many writers).
LANES = 16

TABLES_DIR = "tables"
STRINGS_DIR = "metrics"

MLFLOW_PARENT = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"
SYSTEM_PREFIX = "mlflow."

# --- MLflow's limits (mlflow.utils.validation) ---------------------------------------------------
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_REQUEST_BYTES = 900_000  # MLflow's limit is 1 MB per log_batch request; keep a margin
MAX_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 8000
MAX_PARAM_VALUE_LENGTH = 6000
MAX_RUN_NAME_LENGTH = 250
_INT64 = 1 << 63

STATUS_TO_MLFLOW = {RUNNING: "RUNNING", COMPLETED: "FINISHED", FAILED: "FAILED", CANCELED: "KILLED"}
MLFLOW_TO_STATUS = {"RUNNING": RUNNING, "SCHEDULED": RUNNING, "FINISHED": COMPLETED,
                    "FAILED": FAILED, "KILLED": CANCELED}


# --- names ---------------------------------------------------------------------------------------
_NATIVE_KEY = re.compile(r"^[A-Za-z0-9_\-. :/]+$")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_\-. ]")


def is_native_key(name: str) -> bool:
    """True if MLflow (any store, any OS but Windows' colon) accepts `name` as a metric, param or
    tag key unchanged. Conservative: ASCII only."""
    if not name or len(name) > MAX_KEY_LENGTH or not _NATIVE_KEY.match(name):
        return False
    norm = posixpath.normpath(name)
    return not (norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"))


@lru_cache(maxsize=65536)
def encode_key(name: str) -> str:
    """`name` itself if MLflow accepts it, else a readable, valid and unique stand-in:
    ``acc@1`` -> ``acc_1_<10 hex digits of its sha1>``."""
    if is_native_key(name):
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    stem = _UNSAFE_CHAR.sub("_", name)[:200].strip(" .") or "_"
    return f"{stem}_{digest}"


def safe_path(name: str) -> str:
    """A single artifact path component standing for `name` (used for table artifacts)."""
    stem = _UNSAFE_CHAR.sub("_", name)[:150].strip(" .") or "_"
    if stem == name:
        return stem
    return f"{stem}_{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def truncate(value: str | None, limit: int) -> str:
    """MLflow's form of a possibly None, possibly long value (the exact one is in the stream)."""
    if value is None:
        return ""
    return value if len(value) <= limit else value[:limit]


# --- run info <-> tags -------------------------------------------------------------------------
def native_run_name(run: RunInfo) -> str:
    """MLflow's run name: the display name (what runbridge shows), else the runbridge run id."""
    name = run.display_name
    if name is None or not name.strip():
        return run.run_id[:MAX_RUN_NAME_LENGTH]
    return name[:MAX_RUN_NAME_LENGTH]


def run_info_tags(run: RunInfo) -> dict[str, str]:
    """The reserved tags of `run`: its runbridge id, microsecond times, and its error if it has
    one (`TAG_PARENT` is added by the caller when MLflow lacks the parent; what tags cannot say
    goes into the stream, see `needs_exact_info`)."""
    tags = {TAG_RUN_ID: run.run_id, TAG_START: str(run.start_time)}
    if run.end_time is not None:
        tags[TAG_END] = str(run.end_time)
    if run.error is not None:
        tags[TAG_ERROR] = truncate(run.error, MAX_TAG_VALUE_LENGTH)
    return tags


def needs_exact_info(run: RunInfo) -> bool:
    """True when MLflow's fields and the tags cannot give `run` back exactly: a display name its
    run name cannot hold (over 250 characters, blank, or equal to the run id) or an error longer
    than a tag. Such a run's RunInfo goes into the stream."""
    name = run.display_name
    named_exactly = native_run_name(run) == run.run_id if name is None else (
        native_run_name(run) == name and name != run.run_id)
    return not named_exactly or (run.error is not None and len(run.error) > MAX_TAG_VALUE_LENGTH)


def _int_or(text: str | None, default: Any) -> Any:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def run_info_from_mlflow(info: Any, tags: dict[str, str], experiment: str,
                         parent_id: str | None, exact: RunInfo | None = None) -> RunInfo:
    """The RunInfo of an MLflow run (`info` is an `mlflow.entities.RunInfo`).

    Microsecond times come from the tags, `exact` (the latest RunInfo of the run's stream, when
    read and if any) gives a display name or a full error MLflow cannot hold; each is taken only
    where it still agrees with MLflow's own fields (an MLflow user may have renamed or re-ended
    the run since). Tags of earlier versions are read likewise.
    `parent_id` is the runbridge id of the MLflow parent run.
    """
    run_id = tags.get(TAG_RUN_ID) or info.run_id
    status = MLFLOW_TO_STATUS.get(info.status, RUNNING)
    legacy = tags.get(TAG_STATUS)
    if legacy in STATUS_TO_MLFLOW and STATUS_TO_MLFLOW[legacy] == info.status:
        status = legacy  # (a one-to-one mapping: only SCHEDULED differs)
    start_ms = info.start_time or 0
    start = start_ms * 1000
    for candidate in (_int_or(tags.get(TAG_START), None), exact.start_time if exact is not None else None):
        if candidate is not None and candidate // 1000 == start_ms:
            start = candidate
            break
    end_ms = info.end_time
    end = None
    if end_ms is not None and status != RUNNING:
        end = end_ms * 1000
        for candidate in (_int_or(tags.get(TAG_END), None), exact.end_time if exact is not None else None):
            if candidate is not None and candidate // 1000 == end_ms:
                end = candidate
                break
    display_name = info.run_name or None
    if exact is not None and native_run_name(exact) == info.run_name:
        display_name = exact.display_name
    elif TAG_DISPLAY_NAME in tags:
        try:
            display_name = json.loads(tags[TAG_DISPLAY_NAME])
        except ValueError:
            pass
    elif info.run_name == run_id:
        display_name = None  # MLflow's run name of a run without a display name
    if TAG_PARENT in tags:
        parent_id = tags[TAG_PARENT]
    error = tags.get(TAG_ERROR) if status != RUNNING else None
    if error is not None and exact is not None and exact.error is not None and exact.error.startswith(error):
        error = exact.error
    return RunInfo(run_id=run_id, experiment=experiment, display_name=display_name,
                   parent_id=parent_id, status=status, start_time=start, end_time=end, error=error)


# --- records -> MLflow entities ------------------------------------------------------------------
@dataclass
class RunState:
    """Per-run state of one backend instance: each writer's lane, the last native (timestamp,
    step) per (writer, key), manifest keys written."""

    lanes: dict[str, int] = field(default_factory=dict)
    last_ms: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    #: the RunInfo start_run saw, written into the stream by the next write (exact start time)
    pending: RunInfo | None = None
    #: the request path a server that proxies the run's artifacts takes chunks at ("" if none)
    artifact_root: str | None = None


def lane_ms(time_us: int, lane: int) -> int:
    """The first millisecond at or after `time_us` in `lane` (ms ≡ lane mod LANES)."""
    ms = time_us // 1000
    return ms + (lane - ms) % LANES


def lane_of(params: dict[str, str], writer: str) -> int | None:
    """The lane `writer` claimed in a run whose params are `params`, if any."""
    for key, value in params.items():
        if key.startswith(PARAM_LANE_PREFIX) and value == (writer or "-"):
            tail = key[len(PARAM_LANE_PREFIX):]
            if tail.isdigit():
                return int(tail)
    return None


def free_lanes(params: dict[str, str]) -> Iterator[int]:
    """Lane numbers no writer of the run has claimed yet, in order."""
    taken = {int(k[len(PARAM_LANE_PREFIX):]) for k in params
             if k.startswith(PARAM_LANE_PREFIX) and k[len(PARAM_LANE_PREFIX):].isdigit()}
    n = 0
    while True:
        if n not in taken:
            yield n
        n += 1


@dataclass
class NativeBatch:
    """What one `write` call becomes in MLflow."""

    metrics: list[MlflowMetric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    deleted_tags: list[str] = field(default_factory=list)
    #: (artifact path, local source path or None, bytes or None)
    files: list[tuple[str, str | None, bytes | None]] = field(default_factory=list)
    #: the records as stored in the exact stream (file bytes stripped)
    stream: list[Record] = field(default_factory=list)


def stored_value(value: float) -> str:
    """A native metric value as MLflow's stores give it back (the SQL store clamps ±inf to the
    largest float), as a comparable key (NaN equals NaN)."""
    if value != value:
        return "nan"
    if math.isinf(value):
        value = math.copysign(1.7976931348623157e308, value)
    return repr(float(value))


def native_metric_value(value: Any) -> float | None:
    """The float MLflow charts for a metric value, or None if it is not a native number."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def translate_batch(records: Sequence[Record], state: RunState, native_metrics: bool = True) -> NativeBatch:
    """Turn one write call into MLflow entities plus the exact stream, updating `state`. With
    `native_metrics` false, metrics go into the stream only (their native points are sent later:
    `runbridge_mlflow.mirror`)."""
    out = NativeBatch()
    metrics = out.metrics
    last_ms = state.last_ms
    tag_ops: dict[str, str | None] = {}  # native key -> value, or None to delete (last op wins)
    params: dict[str, str] = {}
    manifest: dict[str, str] = {}

    def native(name: str) -> str:
        key = encode_key(name)
        if key != name and key not in state.keys:
            manifest[key] = name
        return key

    for rec in records:
        kind = type(rec)
        if kind is Metric:
            out.stream.append(rec)
            if not native_metrics:
                continue
            value = native_metric_value(rec.value)
            if value is None:
                if type(rec.value) is str:  # its latest value, where MLflow users look
                    tag_ops[native(STRING_TAG_PREFIX + rec.name)] = truncate(rec.value, MAX_TAG_VALUE_LENGTH)
                continue
            step = rec.step if rec.step is not None else rec.seq
            if not -_INT64 <= step < _INT64:
                continue
            key = native(rec.name)
            ms = lane_ms(rec.time, state.lanes.get(rec.writer, 0) % LANES)
            previous = last_ms.get((rec.writer, key))
            if previous is not None:
                # MLflow orders a history by (timestamp, step, value) and the SQL store drops an
                # exact repeat: keep (timestamp, step) strictly increasing per writer and name,
                # moving a timestamp on by one lane turn only where needed (no drift for
                # increasing steps).
                prev_ms, prev_step = previous
                if ms < prev_ms or (ms == prev_ms and step <= prev_step):
                    ms = prev_ms if step > prev_step else prev_ms + LANES
            last_ms[(rec.writer, key)] = (ms, step)
            metrics.append(MlflowMetric(key, value, ms, step))
        elif kind is Row:
            out.stream.append(rec)
        elif kind is Tag:
            out.stream.append(rec)
            if rec.key.startswith(RESERVED):
                continue  # runbridge's own bookkeeping: exact in the stream only
            key = native(rec.key)
            tag_ops[key] = None if rec.removed else truncate(rec.value, MAX_TAG_VALUE_LENGTH)
        elif kind is Property:
            out.stream.append(rec)
            if rec.key.startswith(RESERVED):
                continue
            key = native(rec.key)
            params.setdefault(key, truncate(rec.value, MAX_PARAM_VALUE_LENGTH))
        elif kind is Image:
            out.files.append((rec.file_name, None, rec.data))
            out.stream.append(rec._replace(data=None) if rec.data is not None else rec)
        elif kind is File:
            out.files.append((rec.name, rec.source, rec.data))
            out.stream.append(rec._replace(source=None, data=None))
        elif kind is RunInfo:
            out.stream.append(rec)
        else:
            raise TypeError(f"the mlflow backend cannot store a {kind.__name__} record")
    for key, name in manifest.items():
        tag_ops[TAG_KEY_PREFIX + key] = truncate(name, MAX_TAG_VALUE_LENGTH)
        state.keys.add(key)
    for key, value in tag_ops.items():
        if value is None:
            out.deleted_tags.append(key)
        else:
            out.tags.append(RunTag(key, value))
    out.params = [Param(k, v) for k, v in params.items()]
    return out


def _entity_bytes(key: str, value: str) -> int:
    return len(json.dumps(key)) + len(json.dumps(value)) + 32


def log_batches(metrics: Sequence[MlflowMetric], params: Sequence[Param] = (),
                tags: Sequence[RunTag] = ()) -> Iterator[tuple[list, list, list]]:
    """Split entities into `log_batch` calls within MLflow's limits: <= 1000 metrics, <= 100
    params, <= 100 tags, <= 1000 entities and < 1 MB per request."""
    batch_m: list = []
    batch_p: list = []
    batch_t: list = []
    size = 0

    def full(extra_bytes: int) -> bool:
        return (len(batch_m) + len(batch_p) + len(batch_t) >= MAX_ENTITIES_PER_BATCH
                or size + extra_bytes > MAX_REQUEST_BYTES)

    for kind, items, limit in (("p", params, MAX_PARAMS_TAGS_PER_BATCH),
                               ("t", tags, MAX_PARAMS_TAGS_PER_BATCH)):
        for item in items:
            nbytes = _entity_bytes(item.key, item.value)
            own = batch_p if kind == "p" else batch_t
            if full(nbytes) or len(own) >= limit:
                yield batch_m, batch_p, batch_t
                batch_m, batch_p, batch_t, size = [], [], [], 0
                own = batch_p if kind == "p" else batch_t
            own.append(item)
            size += nbytes
    for metric in metrics:
        nbytes = len(metric.key) + 96
        if full(nbytes) or len(batch_m) >= MAX_METRICS_PER_BATCH:
            yield batch_m, batch_p, batch_t
            batch_m, batch_p, batch_t, size = [], [], [], 0
        batch_m.append(metric)
        size += nbytes
    if batch_m or batch_p or batch_t:
        yield batch_m, batch_p, batch_t


def stream_keys(records: Iterable[Record]) -> tuple[set[str], set[str], set[str]]:
    """The native metric, param and tag keys the stream's records were written under."""
    metric_keys: set[str] = set()
    param_keys: set[str] = set()
    tag_keys: set[str] = set()
    seen_metric_names: set[str] = set()
    for rec in records:
        kind = type(rec)
        if kind is Metric:
            if rec.name not in seen_metric_names and native_metric_value(rec.value) is not None:
                seen_metric_names.add(rec.name)
                metric_keys.add(encode_key(rec.name))
        elif kind is Tag:
            tag_keys.add(encode_key(rec.key))
        if kind is Metric and type(rec.value) is str:
            tag_keys.add(encode_key(STRING_TAG_PREFIX + rec.name))
        elif kind is Property:
            param_keys.add(encode_key(rec.key))
    return metric_keys, param_keys, tag_keys


# --- MLflow entities -> records (runs other tools wrote, or additions to ours) -------------------
def decode_key(key: str, tags: dict[str, str]) -> str:
    """The original name behind a native key (the manifest tag), else the key itself."""
    return tags.get(TAG_KEY_PREFIX + key, key)


def is_user_tag(key: str) -> bool:
    return not key.startswith(SYSTEM_PREFIX) and not key.startswith(RESERVED)


def metric_records(name: str, history: Iterable[Any]) -> list[Metric]:
    """An MLflow metric history as Metric records in step order (then time order)."""
    points = sorted(history, key=lambda m: (m.step, m.timestamp))
    return [Metric(name=name, seq=i, value=float(m.value), step=int(m.step),
                   time=int(m.timestamp) * 1000) for i, m in enumerate(points)]


# --- tables as MLflow sees them ------------------------------------------------------------------
def _json_cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def table_artifacts(records: Iterable[Record]) -> dict[str, dict[str, list]]:
    """Every table of a run in MLflow's `log_table` JSON form ({"columns", "data"}), by name."""
    columns: dict[str, list[str]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if type(rec) is Row:
            cols = columns.setdefault(rec.name, [])
            for column, _ in rec.cells:
                if column not in cols:
                    cols.append(column)
            rows.setdefault(rec.name, []).append(dict(rec.cells))
    return {
        name: {"columns": cols, "data": [[_json_cell(r.get(c)) for c in cols] for r in rows[name]]}
        for name, cols in columns.items()
    }


def table_path(name: str, taken: set[str]) -> str:
    """The artifact path of table `name`, avoiding the names of the run's own files."""
    path = f"{TABLES_DIR}/{safe_path(name)}.json"
    if path in taken:
        path = f"{TABLES_DIR}/{safe_path(name)}.table.json"
    return path


def _text_line(step: int, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return f"{step}\t{escaped}"


def string_series_artifacts(records: Iterable[Record], taken: set[str]) -> dict[str, bytes]:
    """Every metric logged as two or more strings, as a text artifact ``metrics/<name>.txt`` of
    ``<step>\t<value>`` lines (step = the user's step, else the value's position; backslashes
    and line breaks escaped), by artifact path, avoiding the paths in `taken`."""
    series: dict[str, list[str]] = {}
    for rec in records:
        if type(rec) is Metric and type(rec.value) is str:
            step = rec.step if rec.step is not None else rec.seq
            series.setdefault(rec.name, []).append(_text_line(step, rec.value))
    out = {}
    for name, lines in series.items():
        if len(lines) < 2:
            continue  # a single value: its tag says it all
        path = f"{STRINGS_DIR}/{safe_path(name)}.txt"
        if path in taken:
            path = f"{STRINGS_DIR}/{safe_path(name)}.metric.txt"
        out[path] = ("\n".join(lines) + "\n").encode("utf-8")
    return out

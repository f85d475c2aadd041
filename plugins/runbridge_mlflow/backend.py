"""``mlflow:<tracking uri>``: runs stored in MLflow through its own client (`MlflowClient`).

Any tracking URI MLflow supports: ``mlflow:sqlite:////abs/mlflow.db``, ``mlflow:http://host:5000``,
``mlflow:file:///abs/mlruns``. The translation rules live in `translate` (pure); this module
only makes the client calls. See `runbridge_mlflow.translate` for what MLflow users see.

With an http(s) server, `write` returns once the exact stream chunk is stored (put straight into
the run's proxied artifacts when it can be, `native_http`); the native metric points follow on a
background thread (`runbridge_mlflow.mirror`: bounded memory, a spill file beyond it; what it
fails to send is reconciled from the stream when the run ends), so the script never waits for
the server's slow metric ingestion.

Longer than 400 lines because it is one class: every hook's MLflow client calls, which share the
run lookups, lanes and per-run state (URIs, the stream's format and reading live in their own
modules).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import Counter
from itertools import count
from operator import itemgetter
from pathlib import Path
from typing import Any, Sequence

import mlflow  # noqa: F401 - an ImportError here makes the core suggest `pip install runbridge[mlflow]`
from mlflow import MlflowClient
from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import RunTag, ViewType
from mlflow.exceptions import MlflowException

from runbridge import forksafe
from runbridge.batch import WRITER, metric_points
from runbridge.errors import StoreNotFoundError
from runbridge.hookspecs import hookimpl
from runbridge.media import safe_join, safe_name
from runbridge.records import RUNNING, File, Image, Metric, Property, Record, RunInfo, Tag

from . import chunks
from . import translate as tr
from . import native_http
from .mirror import Mirror
from .stream import DecodedCache, Stream, local_artifact_dir
from .uri import Prober, is_http, probe_interval

_new = tuple.__new__
_RUN_ID_OK = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_PAGE = 1000
def _not_found(exc: MlflowException) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or \
        "not found" in str(exc).lower() or "does not exist" in str(exc).lower()


#: The SQLAlchemy engines of the local MLflow stores this process used (MLflow keeps one store
#: per URI for the whole process, so a forked child's fresh client gets its parent's).
_ENGINES: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _watch_pool(client: MlflowClient) -> None:
    """Remember `client`'s SQLAlchemy engine (a SQL store's), whose pool a forked child drops."""
    engine = getattr(getattr(getattr(client, "_tracking_client", None), "store", None), "engine", None)
    if engine is not None:
        _ENGINES.add(engine)


def _drop_inherited_pools() -> None:
    """In a forked child: forget the parent's pooled database connections without closing them
    (they are the parent's); the child's queries open connections of its own."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_pools)


class MlflowClientBackend:
    """Runs kept in MLflow: native metrics/params/tags/artifacts plus an exact record stream.
    Opened by `runbridge_mlflow.MlflowBackend` once the URI is checked (an http server probed)."""

    def __init__(self, location: str, prober: Prober | None = None):
        self.uri = location
        self._artifact_root: str | None = None
        #: The local database or folder the store lives in (None for servers): reads check it
        #: exists, since MLflow's client would create it.
        self.local_store: Path | None = None
        if location.startswith("sqlite:///") and ":memory:" not in location:
            db = Path(location[len("sqlite:///"):]).expanduser()
            db = db if db.is_absolute() else Path.cwd() / db
            self.local_store = db
            self.uri = "sqlite:///" + str(db)
            # MLflow's default would be ./mlruns of whatever folder the process runs in:
            # keep a database's artifacts beside it instead.
            self._artifact_root = (db.parent / "mlartifacts").as_uri()
        elif location.startswith("file:") or "://" not in location:
            # The file store is in maintenance mode in MLflow 3 and refuses to open unless
            # allowed; naming it in the backend spec is that explicit choice.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            if location.startswith("file:"):
                from mlflow.utils.file_utils import local_file_uri_to_path

                self.local_store = Path(local_file_uri_to_path(location)).expanduser().absolute()
            elif location and location.split(":")[0] not in ("databricks", "databricks-uc", "uc"):
                self.local_store = Path(location).expanduser().absolute()
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in scripts
        # No "🏃 View run ..." banner on stdout at every run end (a user can set it back to false).
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.is_http = is_http(location)
        self.prober = prober if prober is not None or not self.is_http else Prober(location, probe_interval())
        self._client: MlflowClient | None = None
        # A local store is SQLite (or files) in this process: never forked mid-transaction.
        self._lock = threading.RLock() if self.is_http else forksafe.guarded_lock()
        self._experiment_ids: dict[str, str] = {}
        self._mids: dict[tuple[str, str], str] = {}
        self._states: dict[str, tr.RunState] = {}
        self._counter = count()
        self._last_chunk_ns = 0
        self._decoded = DecodedCache()
        #: http(s): native metric points are sent behind the stream by a thread (`mirror`);
        #: local stores take them in `write` itself (no server to wait for).
        self._mirror = Mirror(self._send_native, on_behind=self._reconcile_mid) if self.is_http else None
        #: the mirror's JSON posts (plain http(s) servers without credentials), else MLflow's client
        direct = self.is_http and native_http.usable(location)
        self._json = native_http.JsonSender(location) if direct else None
        #: the writer's uploads of stream chunks straight to the server, else MLflow's client
        self._putter = native_http.ChunkPutter(location) if direct else None

    def __repr__(self) -> str:
        return f"MlflowClientBackend({self.uri!r})"

    @property
    def client(self) -> MlflowClient:
        """MLflow's client, made on first use: making it creates a local store that is missing."""
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.uri)
            if not self.is_http:
                _watch_pool(self._client)
        return self._client

    # -- helpers ---------------------------------------------------------------------------------
    def _require_store(self) -> None:
        """Read hooks: a local store that does not exist is an error (MLflow would create it)."""
        if self.local_store is not None and not self.local_store.exists():
            raise StoreNotFoundError(f"no MLflow store at {self.local_store} (it is created when a run "
                                     "writes to it; check the tracking URI)")

    def _check_reachable(self, force: bool = False) -> None:
        """Fail fast, naming the URI, when an http tracking server does not answer."""
        if self.prober is not None:
            self.prober.check(force)

    def _experiment_id(self, name: str, create: bool) -> str | None:
        eid = self._experiment_ids.get(name)
        if eid is not None:
            return eid
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            if not create:
                return None
            location = f"{self._artifact_root}/{uuid.uuid4().hex}" if self._artifact_root else None
            try:
                eid = self.client.create_experiment(name, artifact_location=location)
            except MlflowException as exc:
                exp = self.client.get_experiment_by_name(name)  # created meanwhile by another process
                if exp is None:
                    raise exc
                eid = exp.experiment_id
        else:
            if exp.lifecycle_stage != "active":
                if not create:
                    return None
                self.client.restore_experiment(exp.experiment_id)
            eid = exp.experiment_id
        self._experiment_ids[name] = eid
        return eid

    def _search_by_id(self, eid: str, run_id: str) -> Any | None:
        quote = "'" if "'" not in run_id else '"'
        if quote in run_id:
            return None
        runs = self.client.search_runs(
            [eid], filter_string=f"tags.`{tr.TAG_RUN_ID}` = {quote}{run_id}{quote}", max_results=5)
        if not runs:
            return None
        return min(runs, key=lambda r: r.info.start_time or 0)

    def _find_run(self, experiment: str, run_id: str) -> Any | None:
        """The MLflow run (entity) holding runbridge run `run_id`, or None."""
        mid = self._mids.get((experiment, run_id))
        if mid is not None:
            try:
                return self.client.get_run(mid)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise
                self._mids.pop((experiment, run_id), None)
        eid = self._experiment_id(experiment, create=False)
        if eid is None:
            return None
        run = self._search_by_id(eid, run_id)
        if run is None and _RUN_ID_OK.match(run_id):
            # a run plain MLflow wrote: its runbridge id is its MLflow id
            try:
                run = self.client.get_run(run_id)
            except MlflowException as exc:
                if not _not_found(exc) and "INVALID_PARAMETER_VALUE" not in str(getattr(exc, "error_code", "")):
                    raise
                run = None
            if run is not None and (run.info.experiment_id != eid
                                    or run.data.tags.get(tr.TAG_RUN_ID, run_id) != run_id
                                    or run.info.lifecycle_stage != "active"):
                run = None
        if run is not None:
            self._mids[(experiment, run_id)] = run.info.run_id
        return run

    def _mid(self, run: RunInfo) -> str:
        """The MLflow id of a run runbridge writes to, creating the run if needed."""
        mid = self._mids.get((run.experiment, run.run_id))
        if mid is None:
            found = self._find_run(run.experiment, run.run_id)
            if found is None:
                self.start_run(run)
                return self._mids[(run.experiment, run.run_id)]
            mid = found.info.run_id
        return mid

    def _state(self, mid: str) -> tr.RunState:
        state = self._states.get(mid)
        if state is None:
            state = self._states[mid] = tr.RunState()
        return state

    def _claim_lanes(self, mid: str, state: tr.RunState, points: Sequence[tuple]) -> None:
        """Give every writer of metric `points` its timestamp lane in the run (see `translate`)."""
        writers = set(map(itemgetter(WRITER), points)) - state.lanes.keys()
        if not writers:
            return
        params = self.client.get_run(mid).data.params
        for writer in sorted(writers):
            lane = tr.lane_of(params, writer)
            state.lanes[writer] = lane if lane is not None else self._claim_lane(mid, writer, params)

    def _claim_lane(self, mid: str, writer: str, params: dict[str, str]) -> int:
        """Claim the first free lane with a param: params cannot change, so of two writers that
        race for one lane, the second gets an error and tries the next."""
        value = writer or "-"
        for lane in tr.free_lanes(params):
            key = f"{tr.PARAM_LANE_PREFIX}{lane}"
            try:
                self.client.log_param(mid, key, value)
            except MlflowException:
                params = self.client.get_run(mid).data.params
                if key not in params:
                    raise  # not a lost race: a real error
                if params[key] != value:
                    continue
            if self.client.get_run(mid).data.params.get(key) == value:  # file stores are not atomic
                return lane
            params = self.client.get_run(mid).data.params
        raise AssertionError("unreachable: free_lanes is endless")

    def _chunk_name(self, stream: list[Record]) -> str:
        ns = max(time.time_ns(), self._last_chunk_ns + 1)
        self._last_chunk_ns = ns
        return chunks.chunk_name(ns, os.getpid(), next(self._counter), chunks.chunk_flags(stream))

    def _upload(self, mid: str, files: list[tuple[str, str | None, bytes | None]],
                stream: list[Record], chunk: bytes | None = None) -> None:
        """One artifact upload per write call: the files, then the stream chunk listing them
        (`chunk`: the chunk's bytes made already, of scalar numbers only)."""
        if not files and not stream and chunk is None:
            return
        with tempfile.TemporaryDirectory(prefix="runbridge-mlflow-") as tmp:
            for name, source, data in files:
                target = safe_join(tmp, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                if data is not None:
                    target.write_bytes(data)
                elif source is not None:
                    try:
                        os.link(source, target)
                    except OSError:
                        shutil.copyfile(source, target)
                else:
                    raise ValueError(f"file {name!r} has neither a source nor data")
            if files:
                self.client.log_artifacts(mid, tmp)
            if stream or chunk is not None:
                chunk_dir = Path(tempfile.mkdtemp(dir=tmp))  # never a name a user file took
                data = chunk if chunk is not None else chunks.encode_chunk(stream)
                (chunk_dir / self._chunk_name(stream)).write_bytes(data)
                self.client.log_artifacts(mid, str(chunk_dir), chunks.RECORDS_DIR)

    def _upload_chunk(self, mid: str, state: tr.RunState, data: bytes) -> None:
        """A stream chunk of scalar points: put straight into the run's artifacts when this
        server proxies them (`native_http.ChunkPutter`), else through MLflow's client."""
        if self._putter is not None:
            if state.artifact_root is None:
                uri = self.client.get_run(mid).info.artifact_uri or ""
                state.artifact_root = self._putter.artifact_path(uri) or ""
            if state.artifact_root:
                self._putter.put(state.artifact_root, f"{chunks.RECORDS_DIR}/{self._chunk_name([])}", data)
                return
        self._upload(mid, [], [], data)

    def _log_native(self, mid: str, batch: tr.NativeBatch) -> None:
        for metrics, params, tags in tr.log_batches(batch.metrics, batch.params, batch.tags):
            self.client.log_batch(mid, metrics=metrics, params=params, tags=tags)
        for key in batch.deleted_tags:
            try:
                self.client.delete_tag(mid, key)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise

    def _sync_info(self, mid: str, native: Any, run: RunInfo) -> None:
        """Make an existing MLflow run show `run`'s name, status and times."""
        tags = tr.run_info_tags(run)
        current = native.data.tags
        stale = [RunTag(k, v) for k, v in tags.items() if current.get(k) != v]
        for key in (tr.TAG_ERROR, *tr.LEGACY_TAGS):  # exact values now live in the stream
            if key in current and key not in tags:
                self.client.delete_tag(mid, key)
        for _, _, batch in tr.log_batches((), (), stale):
            self.client.log_batch(mid, tags=batch)
        name = tr.native_run_name(run)
        if name is not None and name != native.info.run_name:
            self.client.update_run(mid, name=name)
        status = tr.STATUS_TO_MLFLOW.get(run.status, "RUNNING")
        end_ms = run.end_time // 1000 if run.end_time is not None else None
        if status == "RUNNING":
            if native.info.status != "RUNNING":
                self.client.update_run(mid, status="RUNNING")
        elif native.info.status != status or (end_ms is not None and native.info.end_time != end_ms):
            self.client.set_terminated(mid, status=status, end_time=end_ms)

    def _load_stream(self, run: Any) -> list[Record]:
        stream = Stream(self.client, run, self._decoded)
        try:
            return stream.records()
        finally:
            stream.close()

    def _parent_runbridge_id(self, parent_mid: str | None, known: dict[str, str] | None = None) -> str | None:
        if not parent_mid:
            return None
        if known is not None and parent_mid in known:
            return known[parent_mid]
        try:
            parent = self.client.get_run(parent_mid)
        except MlflowException:
            return parent_mid
        return parent.data.tags.get(tr.TAG_RUN_ID, parent_mid)

    def _artifact_files(self, mid: str, time_us: int, path: str | None = None) -> list[File]:
        out: list[File] = []
        for info in self.client.list_artifacts(mid, path):
            if info.is_dir:
                if info.path == chunks.ARTIFACT_DIR:
                    continue
                out.extend(self._artifact_files(mid, time_us, info.path))
            else:
                out.append(File(name=info.path, size=int(info.file_size or 0), sha256="", time=time_us))
        return out

    # -- hooks -----------------------------------------------------------------------------------
    @hookimpl
    def start_run(self, run: RunInfo) -> None:
        with self._lock:
            self._check_reachable(force=True)
            if self.local_store is not None and self.uri.startswith("sqlite:///"):
                self.local_store.parent.mkdir(parents=True, exist_ok=True)
            eid = self._experiment_id(run.experiment, create=True)
            existing = self._search_by_id(eid, run.run_id)
            if existing is not None:
                mid = existing.info.run_id
                self._mids[(run.experiment, run.run_id)] = mid
                self._sync_info(mid, existing, run)
                if tr.needs_exact_info(run):
                    self._state(mid).pending = run
                return
            tags = tr.run_info_tags(run)
            if run.parent_id is not None:
                parent = self._find_run(run.experiment, run.parent_id)
                if parent is not None:
                    tags[tr.MLFLOW_PARENT] = parent.info.run_id
                else:  # nothing for MLflow to nest it under: keep the id
                    tags[tr.TAG_PARENT] = run.parent_id
            try:
                tags.setdefault("mlflow.user", getpass.getuser())
            except Exception:  # noqa: BLE001 - no user name is fine
                pass
            created = self.client.create_run(
                eid, start_time=run.start_time // 1000, tags=tags, run_name=tr.native_run_name(run))
            mid = created.info.run_id
            self._mids[(run.experiment, run.run_id)] = mid
            if tr.needs_exact_info(run):  # its exact fields go into the stream with the first write
                self._state(mid).pending = run
            if run.status != RUNNING:
                self.client.set_terminated(
                    mid, status=tr.STATUS_TO_MLFLOW.get(run.status, "FINISHED"),
                    end_time=run.end_time // 1000 if run.end_time is not None else None)

    @hookimpl
    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        if not records:
            return
        with self._lock:
            self._check_reachable()
            mid = self._mid(run)
            state = self._state(mid)
            pending = state.pending
            mirror = self._mirror
            points, others = metric_points(records)
            self._claim_lanes(mid, state, points)
            if mirror is not None and pending is None and not others:
                # A batch of scalar numbers (what run.log makes): its chunk built from columns,
                # no record made per point; the mirror makes the native points later.
                data = chunks.encode_points(points)
                if data is not None:
                    with mirror.streaming():
                        self._upload_chunk(mid, state, data)
                    mirror.put(mid, list(points))
                    return
            batch = tr.translate_batch(records if pending is None else [pending, *records], state,
                                       native_metrics=mirror is None)
            # Files, then the exact stream chunk listing them, then the native view. If the native
            # calls fail half way, reads stay exact and `runbridge sync` (which skips what `read`
            # shows is held) cannot mix native float copies into the stream.
            with mirror.streaming() if mirror is not None else contextlib.nullcontext():
                self._upload(mid, batch.files, batch.stream)
            state.pending = None
            self._log_native(mid, batch)
            if mirror is not None:  # the native points follow on the mirror's thread
                mirror.put(mid, list(points))

    def _send_native(self, mid: object, points: list) -> None:
        """The mirror's thread: a batch's points as MLflow-native metric history."""
        assert isinstance(mid, str)
        state = self._states.get(mid) or tr.RunState()
        metrics = [_new(Metric, p) if type(p) is tuple else p for p in points]
        batch = tr.translate_batch(metrics, state)
        if self._json is not None:
            rest = []
            for start in range(0, len(batch.metrics), tr.MAX_METRICS_PER_BATCH):
                part = batch.metrics[start:start + tr.MAX_METRICS_PER_BATCH]
                rest.extend(self._json.post(mid, part))  # NaN/inf: MLflow's client spells them
            batch.metrics = rest
        self._log_native(mid, batch)

    @hookimpl
    def end_run(self, run: RunInfo, status: str) -> None:
        with self._lock:
            self._check_reachable()
            mid = self._mid(run)
            final = run if run.status == status else run._replace(status=status)
            if tr.needs_exact_info(final):
                self._upload(mid, [], [final])  # the display name or error MLflow cannot hold
            native = self.client.get_run(mid)
            if self._mirror is not None and self._mirror.drain(mid):
                self._reconcile(native)  # a failed send (or a wait that timed out): fill the history in
            self._sync_info(mid, native, final)
            stream = Stream(self.client, native, self._decoded)
            try:
                flags = [chunks.flags_of(c) for c in stream.chunks]
                tables = tr.TAG_TABLES in native.data.tags or any("r" in f for f in flags)
                strings = any("S" in f for f in flags) or sum(1 for f in flags if "s" in f.lower()) > 1
                uncovered = len(stream.uncovered_estimate())
                if tables or strings or uncovered >= chunks.SNAPSHOT_MIN_CHUNKS:
                    records = stream.records()
                    self._write_views(mid, native, records, tables, strings)
                    if uncovered >= chunks.SNAPSHOT_MIN_CHUNKS:
                        self._write_snapshot(mid, stream.chunks, records)
            finally:
                stream.close()
            self._states.pop(mid, None)

    def _write_snapshot(self, mid: str, names: list[str], records: list[Record]) -> None:
        """One file holding the whole stream so far, so a read fetches one file instead of every
        chunk (a long run flushes often). Chunks stay: nothing is re-written."""
        with tempfile.TemporaryDirectory(prefix="runbridge-mlflow-") as tmp:
            Path(tmp, names[-1]).write_bytes(chunks.encode_snapshot(names, records))
            self.client.log_artifact(mid, str(Path(tmp, names[-1])), chunks.SNAPSHOTS_DIR)

    def _write_views(self, mid: str, native: Any, records: list[Record], tables: bool, strings: bool) -> None:
        """What MLflow users look for, written once when the run ends from the exact stream
        (never re-written per row or value): the run's tables as MLflow table artifacts
        (`mlflow.load_table` reads them) and its series of strings as text artifacts."""
        taken = {r.name for r in records if type(r) is File} | {
            r.file_name for r in records if type(r) is Image}
        files: list[tuple[str, str | None, bytes | None]] = []
        logged: list = []
        if tables:
            try:
                logged = json.loads(native.data.tags.get(tr.MLFLOW_LOGGED_ARTIFACTS, "[]"))
            except ValueError:
                logged = []
            for name, table in tr.table_artifacts(records).items():
                path = tr.table_path(name, taken)
                files.append((path, None, json.dumps(table, ensure_ascii=False).encode("utf-8")))
                entry = {"path": path, "type": "table"}
                if entry not in logged:
                    logged.append(entry)
        if strings:
            files.extend((path, None, data) for path, data in tr.string_series_artifacts(records, taken).items())
        self._upload(mid, files, [])
        value = json.dumps(logged)
        if logged and len(value) <= tr.MAX_TAG_VALUE_LENGTH:
            self.client.set_tag(mid, tr.MLFLOW_LOGGED_ARTIFACTS, value)

    @hookimpl
    def reconcile(self, run: RunInfo) -> int:
        """Give MLflow's native metric history every point of the exact stream it lacks (a write
        whose stream chunk was stored but whose `log_batch` failed). Points are matched by
        (name, step, value) as MLflow stores them, so nothing already there is duplicated."""
        with self._lock:
            self._check_reachable()
            native = self._find_run(run.experiment, run.run_id)
            if native is None or tr.TAG_RUN_ID not in native.data.tags:
                return 0
            if self._mirror is not None:
                self._mirror.drain(native.info.run_id)  # what it sends is then in the history
            return self._reconcile(native)

    def _reconcile_mid(self, mid: object) -> None:
        assert isinstance(mid, str)
        self._reconcile(self.client.get_run(mid))

    def _reconcile(self, native: Any) -> int:
        """`reconcile` for the MLflow run `native`: the stream points its history lacks, sent."""
        with self._lock:
            mid = native.info.run_id
            metrics = [r for r in self._load_stream(native) if type(r) is Metric]
            state = tr.RunState()
            self._claim_lanes(mid, state, metrics)
            expected: dict[str, list[MlflowMetric]] = {}
            for point in tr.translate_batch(metrics, state).metrics:
                expected.setdefault(point.key, []).append(point)
            added: list[MlflowMetric] = []
            for key, points in expected.items():
                history = self.client.get_metric_history(mid, key)
                have = Counter((m.step, tr.stored_value(m.value)) for m in history)
                taken = {(m.timestamp, m.step, tr.stored_value(m.value)) for m in history}
                for point in points:
                    value = tr.stored_value(point.value)
                    if have[(point.step, value)] > 0:
                        have[(point.step, value)] -= 1
                        continue
                    ms = point.timestamp
                    while (ms, point.step, value) in taken:
                        ms += tr.LANES
                    taken.add((ms, point.step, value))
                    added.append(MlflowMetric(key, point.value, ms, point.step))
            for batch, _, _ in tr.log_batches(added):
                self.client.log_batch(mid, metrics=batch)
            return len(added)

    @hookimpl
    def read(self, experiment: str, run_id: str) -> list[Record] | None:
        with self._lock:
            self._require_store()
            self._check_reachable()
            run = self._find_run(experiment, run_id)
            if run is None:
                return None
            return self._read(run, experiment)

    def _read(self, run: Any, experiment: str) -> list[Record]:
        """A run runbridge wrote: its exact stream, plus whatever plain MLflow added natively.
        A run plain MLflow wrote: its native metrics, params, tags and artifacts, plus whatever
        runbridge added to it since (tags on a fetched run: a stream of its own)."""
        tags = run.data.tags
        mid = run.info.run_id
        ours = tr.TAG_RUN_ID in tags
        stream: list[Record] = []
        exact = None
        for rec in self._load_stream(run):
            if type(rec) is RunInfo:
                exact = rec
            else:
                stream.append(rec)
        info = tr.run_info_from_mlflow(
            run.info, tags, experiment, self._parent_runbridge_id(tags.get(tr.MLFLOW_PARENT)), exact)
        metric_keys, param_keys, tag_keys = tr.stream_keys(stream)
        start = info.start_time
        series = []
        for key in run.data.metrics:
            if key not in metric_keys:
                history = tr.metric_records(tr.decode_key(key, tags), self.client.get_metric_history(mid, key))
                if history:
                    series.append(history)
        series.sort(key=lambda s: min(m.time for m in s))
        native: list[Record] = [m for s in series for m in s]
        for key, value in run.data.params.items():
            if key not in param_keys and not key.startswith(tr.RESERVED):
                native.append(Property(tr.decode_key(key, tags), value, start))
        for key, value in tags.items():
            if key not in tag_keys and tr.is_user_tag(key):
                native.append(Tag(tr.decode_key(key, tags), value, start))
        if ours:
            return [info, *stream, *native]
        held = {r.name for r in stream if type(r) is File} | {r.file_name for r in stream if type(r) is Image}
        native.extend(f for f in self._artifact_files(mid, info.end_time or start) if f.name not in held)
        return [info, *native, *stream]

    @hookimpl
    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        with self._lock:
            self._require_store()
            self._check_reachable()
            if experiment is None:
                exps = {e.experiment_id: e.name for e in self._all_experiments()}
            else:
                eid = self._experiment_id(experiment, create=False)
                if eid is None:
                    return []
                exps = {eid: experiment}
            if not exps:
                return []
            runs = []
            token = None
            while True:
                page = self.client.search_runs(list(exps), max_results=_PAGE, page_token=token,
                                               order_by=["attributes.start_time DESC"])
                runs.extend(page)
                token = page.token
                if not token:
                    break
            ids = {r.info.run_id: r.data.tags.get(tr.TAG_RUN_ID, r.info.run_id) for r in runs}
            infos = []
            for r in runs:
                parent = r.data.tags.get(tr.MLFLOW_PARENT)
                infos.append(tr.run_info_from_mlflow(
                    r.info, r.data.tags, exps[r.info.experiment_id],
                    self._parent_runbridge_id(parent, ids) if parent else None))
            infos.sort(key=lambda i: i.start_time, reverse=True)
            return infos

    def _all_experiments(self) -> list[Any]:
        out = []
        token = None
        while True:
            page = self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=_PAGE,
                                                  page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    @hookimpl
    def list_experiments(self) -> list[str]:
        with self._lock:
            self._require_store()
            self._check_reachable()
            names = []
            for exp in self._all_experiments():
                if exp.name == "Default" and not self.client.search_runs([exp.experiment_id], max_results=1):
                    continue  # MLflow's own empty default experiment
                names.append(exp.name)
            return names

    @hookimpl
    def run_url(self, run: RunInfo) -> str | None:
        with self._lock:
            self._require_store()
            found = self._find_run(run.experiment, run.run_id)
            if found is None:
                return None
            path = f"#/experiments/{found.info.experiment_id}/runs/{found.info.run_id}"
            if self.is_http:
                return f"{self.uri.rstrip('/')}/{path}"
            return (f"mlflow ui --backend-store-uri {self.uri} then open http://127.0.0.1:5000/{path}")

    @hookimpl
    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool | None:
        with self._lock:
            self._require_store()
            found = self._find_run(run.experiment, run.run_id)
        if found is None:
            return None
        mid = found.info.run_id
        root = local_artifact_dir(found.info.artifact_uri or "")
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        if root is not None:
            # read in place: MLflow's local download parses the path as a URI ('?', '#', '%')
            source = safe_join(root, name)
            if not source.is_file():
                return None
            shutil.copyfile(source, destination)
            return True
        name = safe_name(name)
        with tempfile.TemporaryDirectory(prefix="runbridge-mlflow-") as tmp:
            try:
                path = self.client.download_artifacts(mid, name, tmp)
            except (MlflowException, OSError):
                return None
            if not os.path.isfile(path):
                return None
            shutil.copyfile(path, destination)
        return True

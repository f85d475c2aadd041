"""MLflow over http(s): native metric points sent behind the exact stream (`runbridge_mlflow.mirror`).

What a user checks: once the run ends, MLflow's own metric history (what its UI charts) holds every
point, whether the server kept up, the queue overflowed or the server was down for a while; values
read back exactly; the queue waiting in memory never exceeds its limit; and the points the mirror
sends are the same history the synchronous path writes. A real `mlflow server`, no mocks.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import Iterator

from mlflow import MlflowClient

from mlflow_fixtures import MlflowServer, mlflow_sqlite_uri
from runbridge import Experiment, Run, Workspace
from runbridge.backends import open_backend
from runbridge.records import Metric, RunInfo
from runbridge_mlflow.mirror import LIMIT_ENV

T0 = 1_700_000_000_000_000


def native_history(uri: str, experiment: str, key: str) -> list[tuple[int, float]]:
    client = MlflowClient(uri)
    [native] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return sorted((m.step, m.value) for m in client.get_metric_history(native.info.run_id, key))


@contextlib.contextmanager
def chunk_uploading(mirror) -> Iterator[threading.Thread]:
    """A stream chunk upload in progress on another thread (the writer's) until the block ends."""
    uploading, release = threading.Event(), threading.Event()

    def upload() -> None:
        with mirror.streaming():
            uploading.set()
            release.wait(30)

    uploader = threading.Thread(target=upload)
    uploader.start()
    uploading.wait()
    try:
        yield uploader
    finally:
        release.set()
        uploader.join()


def test_an_overflowing_queue_stays_bounded_and_the_native_history_is_whole_after_complete(
        mlflow_server, monkeypatch):
    """The server is slower than the script: the queue in memory is capped (later batches wait in
    the spill file), and after complete() MLflow's history is whole, nothing missing or doubled."""
    monkeypatch.setenv(LIMIT_ENV, "3000")
    ws = Workspace(backends=[f"mlflow:{mlflow_server.url}"])
    run = Experiment(ws, "mirror-bounded").start_logging(outputs=None)
    n = 20_000
    for i in range(n):
        run.log("loss", i / 7.0, step=i)
        if i % 2000 == 1999:
            run.flush()
    mirror = ws.backends[0].impl.impl._mirror
    run.complete()
    assert 0 < mirror.peak <= 3000
    assert mirror.spilled > 0
    assert native_history(mlflow_server.url, "mirror-bounded", "loss") == [(i, i / 7.0) for i in range(n)]
    exact = Run(Experiment(Workspace(backends=[f"mlflow:{mlflow_server.url}"]), "mirror-bounded"),
                run.id).get_metrics()["loss"]
    assert exact == [i / 7.0 for i in range(n)]


def test_the_native_history_is_whole_when_the_server_was_down_while_the_mirror_sent(
        tmp_path, fast_mlflow_http):
    """Every stream chunk was stored, then the server went away while the mirror still had points
    to send (its sends fail); back up, end_run reconciles them from the stream."""
    server = MlflowServer(tmp_path / "srv").start()
    try:
        backend = open_backend(f"mlflow:{server.url}")
        info = RunInfo("down", "mirror-down", "d", None, "Running", T0)
        backend.start_run(info)
        for b in range(5):
            backend.write(info, [Metric("x", b * 2000 + i, float(b * 2000 + i), None, T0 + b * 2000 + i)
                                 for i in range(2000)])
        server.stop()
        again = MlflowServer(tmp_path / "srv")
        again.port, again.url = server.port, server.url
        server = again.start()
        backend.end_run(info._replace(status="Completed", end_time=T0 + 99_999), "Completed")
        assert native_history(server.url, "mirror-down", "x") == [(i, float(i)) for i in range(10_000)]
        assert backend.reconcile(info) == 0  # nothing left to add
    finally:
        server.stop()


EDGE = [0.0, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, -2.5, 0.1 + 0.2, 3, -(2 ** 53), True,
        float("nan"), float("inf"), float("-inf"), 1 / 3]


def test_the_mirror_writes_the_same_native_history_as_the_synchronous_path(mlflow_server, tmp_path):
    """Edge values (NaN, ±inf, subnormals, ints, bools), repeated steps and a renamed key, through
    the mirror (http: JSON posted directly, NaN/inf by MLflow's client) and through MLflow's
    client in `write` (local SQLite): the same history."""
    sqlite = mlflow_sqlite_uri(tmp_path / "local")
    histories = []
    for uri in (mlflow_server.url, sqlite):
        backend = open_backend(f"mlflow:{uri}")
        info = RunInfo("edge", "mirror-edge", "e", None, "Running", T0)
        backend.start_run(info)
        records = [Metric(name, i, v, i // 2, T0 + 1000 * (i // 3))
                   for name in ("edge", "odd name é") for i, v in enumerate(EDGE)]
        records += [Metric("finite", i, v, i, T0 + 1000 * i) for i, v in enumerate(EDGE)
                    if not isinstance(v, float) or math.isfinite(v)]
        backend.write(info, records)
        mirror = backend.impl.impl._mirror
        if mirror is not None:  # http: every send went through (none left to reconcile)
            deadline = time.monotonic() + 60
            while (mirror.queued or mirror._in_flight is not None) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not mirror._behind, mirror._errors
        backend.end_run(info._replace(status="Completed", end_time=T0 + 99_999_999), "Completed")
        client = MlflowClient(uri)
        [native] = client.search_runs([client.get_experiment_by_name("mirror-edge").experiment_id])
        keys = sorted(native.data.metrics)
        histories.append({k: sorted((m.step, m.timestamp, repr(m.value)) for m in
                                    client.get_metric_history(native.info.run_id, k)) for k in keys})
        exact = Run(Experiment(Workspace(backends=[f"mlflow:{uri}"]), "mirror-edge"), "edge").get_metrics()
        got = exact["edge"]
        assert [repr(v) for v in got] == [repr(v) for v in EDGE]
        assert [type(v) for v in got] == [type(v) for v in EDGE]
    assert histories[0] == histories[1]
    assert len(histories[0]) == 3 and all(len(h) >= 10 for h in histories[0].values())
    assert any(math.isnan(float(v)) for _, _, v in next(iter(histories[0].values())))


def test_a_chunk_built_from_columns_is_byte_for_byte_the_general_one_and_reads_back():
    """`encode_points` (the write path of run.log batches) makes exactly the bytes `encode_chunk`
    makes of the same points, for one series or several, from_list, descriptions, NaN/±inf,
    bools, ints of any size; strings and None take the general path."""
    from runbridge_mlflow import chunks

    cases = [
        [("loss", i, 0.5 + i, None, 10 + i, False, "", "w") for i in range(5)],
        [("a" if i % 2 else "b", i, float(i), i, 10 + i, i == 3, "d" if i == 2 else "", f"w{i % 3}")
         for i in range(9)],
        [("x", i, v, None, i, False, "", "") for i, v in enumerate(EDGE)] + [("x", 99, 2 ** 80, 7, 1, False, "", "")],
        [("x", 0, 10 ** 400, None, 1, False, "", ""), ("x", 1, math.inf, None, 2, False, "", "")],
    ]
    for points in cases:
        data = chunks.encode_points(points)
        assert data == chunks.encode_chunk([Metric(*p) for p in points])
        back = chunks.decode_chunk(data)
        assert [repr(tuple(m)) for m in back] == [repr(tuple(Metric(*p))) for p in points]
    assert chunks.encode_points([("x", 0, "text", None, 1, False, "", "")]) is None
    assert chunks.encode_points([("x", 0, None, None, 1, False, "", "")]) is None


def test_the_mirror_posts_nothing_while_a_stream_chunk_uploads_and_then_sends_every_point_in_order():
    """The exact stream goes first: no send while the backend uploads a chunk (nor just after),
    then every queued point goes out, in order, in sends of at most 1,000 points."""
    from runbridge_mlflow.mirror import PART, QUIET, Mirror

    sent: list[tuple[float, object, list]] = []
    mirror = Mirror(lambda key, points: sent.append((time.monotonic(), key, points)))
    with chunk_uploading(mirror):
        mirror.put("run", list(range(2500)))  # queued while the chunk uploads
        time.sleep(0.3)
    ended = time.monotonic()
    assert not mirror.drain("run", timeout=10)
    assert sent and sent[0][0] >= ended + QUIET * 0.9  # nothing during the upload or just after
    assert [len(points) for _, _, points in sent] == [PART, PART, 500]
    assert [p for _, _, points in sent for p in points] == list(range(2500))


def test_chunk_uploads_go_straight_to_the_server_only_for_artifacts_it_proxies():
    from runbridge_mlflow.native_http import ChunkPutter

    putter = ChunkPutter("http://127.0.0.1:5000/prefix/")
    assert putter.artifact_path("mlflow-artifacts:/3/abc/artifacts") == \
        "/prefix/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts"
    assert putter.artifact_path("mlflow-artifacts:/3/a b/artifacts") == \
        "/prefix/api/2.0/mlflow-artifacts/artifacts/3/a%20b/artifacts"
    for elsewhere in ("mlflow-artifacts://other:5000/3/abc/artifacts", "s3://bucket/3/abc/artifacts",
                      "/srv/mlartifacts/3/abc/artifacts", "file:///srv/3/abc", "mlflow-artifacts:/",
                      "mlflow-artifacts:/3/../../etc", "mlflow-artifacts:/3//abc", "mlflow-artifacts:/3/./a",
                      "mlflow-artifacts:/3/abc?x=1"):
        assert putter.artifact_path(elsewhere) is None, elsewhere  # MLflow's client uploads these


def test_a_child_forked_while_the_parent_uploads_a_chunk_sends_its_own_points():
    """The parent's upload in progress is not the child's: a rank forked during it still sends."""
    import os

    from runbridge_mlflow.mirror import Mirror

    read_end, write_end = os.pipe()
    mirror = Mirror(lambda key, points: os.write(write_end, repr(points).encode() + b"\n"))
    with chunk_uploading(mirror):
        pid = os.fork()
        if pid == 0:
            try:
                with mirror.streaming():  # the child's own upload, then its points
                    pass
                mirror.put("run", [1, 2, 3])
                code = 1 if mirror.drain("run", timeout=5) else 0
            except BaseException:  # noqa: BLE001 - reported by the exit code
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    os.close(write_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.read(read_end, 1000) == b"[1, 2, 3]\n"
    os.close(read_end)


def test_under_uploads_that_never_pause_the_mirror_still_sends_after_its_longest_yield(monkeypatch):
    """The history moves on when the writes never pause: the mirror yields `MAX_YIELD` at most."""
    from runbridge_mlflow import mirror as mirror_module

    monkeypatch.setattr(mirror_module, "MAX_YIELD", 0.2)
    sent: list[float] = []
    mirror = mirror_module.Mirror(lambda key, points: sent.append(time.monotonic()))
    with chunk_uploading(mirror) as uploader:
        began = time.monotonic()
        mirror.put("run", [1, 2])
        deadline = began + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
        still_uploading = uploader.is_alive()
    assert sent and still_uploading  # sent while the upload went on
    assert sent[0] - began >= 0.2 * 0.9

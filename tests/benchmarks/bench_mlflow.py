"""MLflow backend benchmarks (README, Performance), printed as a table of ratios measured in one run.

    python tests/benchmarks/bench_mlflow.py [--points 100000] [--loop-points 5000] [--repeat 1]
                                            [--read-repeat 3] [--no-server]

Into ``mlflow:sqlite:///<tmp>/mlflow.db`` (a fresh database per measurement, created before the
clock starts):
(a) writing N scalar points: runbridge (``run.log("loss", v, step=i)`` in a loop, then
    ``complete()``, which flushes and ends the run) vs
    - a plain ``mlflow.log_metric`` loop (one request per point; it is so slow that it is timed on
      --loop-points points and scaled linearly to N, unless --loop-points >= N), and
    - a hand-written ``MlflowClient.log_batch`` loop in batches of 1000;
(b) reading them back: ``Run(...).get_metrics()`` through a fresh workspace vs
    ``MlflowClient.get_metric_history`` on the run plain MLflow wrote;
(c) the read table: one run of N points written by runbridge, read back (best of --read-repeat,
    interleaved, each read through a fresh workspace or client) from the SQLite store and from a
    live ``mlflow server`` (started here, SQLite behind it, artifacts proxied): the backend's
    ``read`` hook (run lookup plus the exact record stream) and ``Run(...).get_metrics()``
    against ``MlflowClient.get_metric_history`` of the same run's native history.
Ratios are "other / runbridge": above 1.0x means runbridge is faster.
Not a test: machines are noisy, so it prints figures instead of asserting times.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric as MlflowMetric  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)

from runbridge import Experiment, Run, Workspace  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from markdown_table import print_table  # noqa: E402


def _fresh_uri(tmp: Path, label: str) -> str:
    """A new MLflow SQLite store with its schema created (outside the timed part)."""
    folder = tmp / label
    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.search_experiments()
    return uri


def _plain_experiment(client: MlflowClient, uri: str, name: str) -> str:
    folder = Path(uri[len("sqlite:///"):]).parent / "mlartifacts"
    return client.create_experiment(name, artifact_location=folder.as_uri())


def bench(points: int, loop_points: int, repeat: int) -> tuple[list[tuple[str, str, float, float, str]], dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    values = [i * 0.001 for i in range(points)]
    base_ms = int(time.time() * 1000)
    best: dict[str, float] = {}
    facts: dict = {}

    def keep(key: str, seconds: float) -> None:
        best[key] = min(best.get(key, float("inf")), seconds)

    for attempt in range(repeat):
        # (a1) runbridge
        uri = _fresh_uri(tmp, f"rb-{attempt}")
        spec = f"mlflow:{uri}"
        run = Experiment(Workspace(backends=[spec]), "bench").start_logging(outputs=None)
        log = run.log
        gc.collect()
        t = time.perf_counter()
        for i, v in enumerate(values):
            log("loss", v, step=i)
        run.complete()
        keep("rb_write", time.perf_counter() - t)
        rb = (spec, run.id)

        # (a2) MlflowClient.log_batch loop, batches of 1000
        uri_b = _fresh_uri(tmp, f"batch-{attempt}")
        client = MlflowClient(uri_b)
        mid = client.create_run(_plain_experiment(client, uri_b, "bench")).info.run_id
        gc.collect()
        t = time.perf_counter()
        for start in range(0, points, 1000):
            client.log_batch(mid, metrics=[MlflowMetric("loss", values[i], base_ms + i, i)
                                           for i in range(start, min(start + 1000, points))])
        client.set_terminated(mid)
        keep("batch_write", time.perf_counter() - t)
        plain = (client, mid)

        # (b) read back
        gc.collect()
        t = time.perf_counter()
        got = Run(Experiment(Workspace(backends=[rb[0]]), "bench"), rb[1]).get_metrics()["loss"]
        keep("rb_read", time.perf_counter() - t)
        assert got == values, "runbridge read back different values"
        gc.collect()
        t = time.perf_counter()
        history = MlflowClient(uri_b).get_metric_history(plain[1], "loss")
        keep("history_read", time.perf_counter() - t)
        assert len(history) == points

    # (a3) mlflow.log_metric loop (once; slow)
    n = min(loop_points, points)
    uri_l = _fresh_uri(tmp, "loop")
    mlflow.set_tracking_uri(uri_l)
    client = MlflowClient(uri_l)
    mlflow.set_experiment(experiment_id=_plain_experiment(client, uri_l, "bench"))
    with mlflow.start_run():
        gc.collect()
        t = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", values[i], step=i)
        loop = time.perf_counter() - t
    mlflow.set_tracking_uri(None)
    best["loop_write"] = loop * points / n
    facts["loop_measured"] = n

    rows = [
        (f"write {points:,} points", "mlflow.log_metric loop" + ("" if n >= points else f" (timed on {n:,}, scaled)"),
         best["loop_write"], best["rb_write"], "≥ 20x"),
        (f"write {points:,} points", "MlflowClient.log_batch loop (1000/batch)", best["batch_write"], best["rb_write"],
         "≥ 0.8x"),
        (f"read {points:,} points", "MlflowClient.get_metric_history", best["history_read"], best["rb_read"], "≥ 10x"),
    ]
    return rows, facts


def _native_history(uri: str, experiment: str, run_id: str) -> list:
    """`MlflowClient.get_metric_history` of the MLflow run holding runbridge run `run_id`."""
    client = MlflowClient(uri)
    eid = client.get_experiment_by_name(experiment).experiment_id
    [found] = client.search_runs([eid], filter_string=f"tags.`runbridge.run_id` = '{run_id}'")
    return client.get_metric_history(found.info.run_id, "loss")


def bench_read(uri: str, points: int, repeat: int) -> dict[str, float]:
    """Seconds (best of `repeat`) to read `points` points of one run back from `uri`."""
    spec = f"mlflow:{uri}"
    values = [i * 0.001 for i in range(points)]
    run = Experiment(Workspace(backends=[spec]), "bench-read").start_logging(outputs=None)
    for i, v in enumerate(values):
        run.log("loss", v, step=i)
    run.complete()
    best: dict[str, float] = {}
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        backend = Workspace(backends=[spec]).backends[0]
        got = backend.read("bench-read", run.id)
        best["hook"] = min(best.get("hook", float("inf")), time.perf_counter() - t)
        assert [r.value for r in got.records if type(r).__name__ == "Metric"] == values
        gc.collect()
        t = time.perf_counter()
        metrics = Run(Experiment(Workspace(backends=[spec]), "bench-read"), run.id).get_metrics()["loss"]
        best["metrics"] = min(best.get("metrics", float("inf")), time.perf_counter() - t)
        assert metrics == values, "runbridge read back different values"
        gc.collect()
        t = time.perf_counter()
        history = _native_history(uri, "bench-read", run.id)
        best["history"] = min(best.get("history", float("inf")), time.perf_counter() - t)
        assert len(history) == points
    return best


def read_table(points: int, repeat: int, server: bool) -> list[list[str]]:
    """Rows of the read table: SQLite store, then (if `server`) a live tracking server."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-mlflow-read-"))
    stores = [("SQLite store", lambda: (_fresh_uri(tmp, "read-sqlite"), None))]
    if server:
        def start() -> tuple[str, object]:
            from mlflow_fixtures import MlflowServer

            started = MlflowServer(tmp / "server").start()
            return started.url, started
        stores.append(("`mlflow server` (http)", start))
    rows = []
    try:
        for label, open_store in stores:
            uri, handle = open_store()
            try:
                best = bench_read(uri, points, repeat)
            finally:
                if handle is not None:
                    handle.stop()
            for what, key in (("backend `read` hook (the record stream)", "hook"),
                              ("`Run(...).get_metrics()`", "metrics")):
                rows.append([label, what, f"{best['history']:.2f}", f"{best[key]:.3f}",
                             f"{best['history'] / best[key]:.1f}x", "≥ 10x"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the stores and the server's folder
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--loop-points", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--read-repeat", type=int, default=3)
    parser.add_argument("--no-server", action="store_true", help="skip the read table's http row")
    parser.add_argument("--read-only", action="store_true", help="only the read table")
    args = parser.parse_args()
    if args.read_only:
        _print_read(args)
        return
    rows, _ = bench(args.points, args.loop_points, args.repeat)
    print(f"MLflow backend, mlflow {mlflow.__version__}, SQLite store, best of {args.repeat}; "
          "ratio = other / runbridge (above 1x: runbridge faster)")
    print(f"| {'task':<22} | {'compared with':<58} | {'other s':>8} | {'runbridge s':>11} | {'ratio':>7} | target |")
    print(f"|{'-' * 24}|{'-' * 60}|{'-' * 10}|{'-' * 13}|{'-' * 9}|--------|")
    for task, other, other_s, rb_s, target in rows:
        print(f"| {task:<22} | {other:<58} | {other_s:>8.2f} | {rb_s:>11.2f} | {other_s / rb_s:>6.1f}x | {target:<6} |")
    print()
    _print_read(args)


def _print_read(args: argparse.Namespace) -> None:
    rows = read_table(args.points, args.read_repeat, not args.no_server)
    print(f"Reading {args.points:,} points of one run, best of {args.read_repeat}; "
          "ratio = get_metric_history / runbridge")
    print_table(["store", "runbridge reads with", "`get_metric_history` s", "runbridge s", "ratio", "target"],
                rows)


if __name__ == "__main__":
    main()

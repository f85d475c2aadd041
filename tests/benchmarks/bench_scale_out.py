"""Many writers into one MLflow tracking server on PostgreSQL (README, Scaling out), printed as a
table of ratios measured in one run.

    python tests/benchmarks/bench_scale_out.py [--writers 1,2,4,8] [--points 10000]
                                               [--loop-points 500] [--server-workers 4]

Starts a throw-away PostgreSQL server and an ``mlflow server`` on it (as the tests do), then for
each number of writers W starts W processes (one per node), lets each set up untimed, and times
from a common "go" until the last one is done:
- runbridge, a sweep: each writer its own run, ``run.log("loss", v, step=i)`` then ``complete()``
  (which flushes: every point is on the server when the clock stops);
- runbridge, one job: every writer attached to one run (``Run.get_context()``), then ``flush()``;
- plain MLflow, ``MlflowClient.log_batch`` with 1,000-metric batches, each writer its own run;
- plain MLflow, ``mlflow.log_metric`` per point, each writer its own run (one request per point:
  timed on --loop-points points per writer; its rate is points/s all the same).
Columns: total points/s per client, "ratio" = runbridge's rate / the other's (above 1x: runbridge
faster), and the script-visible cost of ``run.log``: the median call and the longest one (a call
that finds the write buffer full writes it before returning), worst writer; and the CPU the
writer processes spend per point (on a real cluster each node's own; here it competes with the
server for the same cores). Not a test: machines are noisy, so it prints figures instead of asserting times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def worker(kind: str, spec: str, experiment: str, points: int) -> None:
    """One writer (a node): set up, say ready, wait for go, log, print its timings as JSON."""
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = spec[len("mlflow:"):]
    values = [1.0 / (i + 1) for i in range(points)]
    if kind.startswith("runbridge"):
        from runbridge import Experiment, Run, Workspace

        if kind == "runbridge-job":
            run = Run.get_context()
            finish = run.flush
        else:
            run = Experiment(Workspace(backends=[spec]), experiment).start_logging(outputs=None)
            finish = run.complete
        log = run.log
        clock = time.perf_counter_ns
        calls = [0] * points
        print("ready", flush=True)
        sys.stdin.readline()
        start, cpu = time.time(), time.process_time()
        for i in range(points):
            t = clock()
            log("loss", values[i], step=i)
            calls[i] = clock() - t
        loop = time.time() - start
        finish()
        calls.sort()
        timings = {"median_us": calls[points // 2] / 1000, "max_ms": calls[-1] / 1e6}
    elif kind == "log_batch":
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        client = MlflowClient(uri)
        eid = _experiment_id(client, experiment)
        mid = client.create_run(eid).info.run_id
        print("ready", flush=True)
        sys.stdin.readline()
        start, cpu = time.time(), time.process_time()
        base = int(start * 1000)
        for lo in range(0, points, 1000):
            client.log_batch(mid, metrics=[Metric("loss", values[i], base + i, i)
                                           for i in range(lo, min(points, lo + 1000))])
        loop = time.time() - start
        client.set_terminated(mid)
    else:  # log_metric
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment_id=_experiment_id(MlflowClient(uri), experiment))
        mlflow.start_run()
        print("ready", flush=True)
        sys.stdin.readline()
        start, cpu = time.time(), time.process_time()
        for i in range(points):
            mlflow.log_metric("loss", values[i], step=i)
        loop = time.time() - start
        mlflow.end_run()
    if not kind.startswith("runbridge"):
        timings = {}
    print(json.dumps({"start": start, "end": time.time(), "loop": loop, "points": points,
                      "cpu": time.process_time() - cpu, **timings}), flush=True)


def _experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - another writer created it meanwhile
        return client.get_experiment_by_name(name).experiment_id


def measure(kind: str, writers: int, points: int, spec: str, tmp: Path) -> dict:
    """Run `writers` processes of `kind` at once; total points/s and the worst loop cost per call."""
    experiment = f"{kind}-{writers}"
    env = {**os.environ, "WORLD_SIZE": str(writers)}
    if kind == "runbridge-job":
        from runbridge import Experiment, Workspace
        
        job = Experiment(Workspace(backends=[spec]), experiment).start_logging(outputs=None)
        env.update(job.process_environment())
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", kind, spec, experiment, str(points)],
                              env={**env, "RANK": str(rank)}, cwd=tmp, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for rank in range(writers)]
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{kind} writer did not start: {line!r}")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"{kind} writer failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    if kind == "runbridge-job":
        job.complete()
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"rate": sum(r["points"] for r in results) / elapsed,
            "median_us": max(r.get("median_us", 0) for r in results),
            "max_ms": max(r.get("max_ms", 0) for r in results),
            "cpu_us": sum(r["cpu"] for r in results) / sum(r["points"] for r in results) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="1,2,4,8")
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--loop-points", type=int, default=500)
    parser.add_argument("--server-workers", type=int, default=4)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    sys.path.insert(0, str(TESTS))
    from mlflow_fixtures import MlflowServer
    from postgres_fixtures import start_postgres

    import mlflow

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    postgres = start_postgres()
    server = None
    try:
        server = MlflowServer(tmp / "server", backend_store_uri=postgres.new_database("bench"),
                              workers=args.server_workers).start()
        spec = f"mlflow:{server.url}"
        print(f"{args.points:,} points per writer into `mlflow server --workers {args.server_workers}` "
              f"on PostgreSQL, mlflow {mlflow.__version__}, {os.cpu_count()} cores; log_metric timed on "
              f"{args.loop_points:,} points per writer; ratio = runbridge (sweep) / other")
        print("| writers | runbridge sweep pts/s | runbridge one job pts/s | log_batch pts/s | ratio "
              "| log_metric pts/s | ratio | run.log median µs (sweep / job) | longest run.log ms (sweep / job) "
              "| writer CPU µs per point (sweep / log_batch) |")
        print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for writers in [int(w) for w in args.writers.split(",")]:
            sweep = measure("runbridge", writers, args.points, spec, tmp)
            job = measure("runbridge-job", writers, args.points, spec, tmp)
            batch = measure("log_batch", writers, args.points, spec, tmp)
            loop = measure("log_metric", writers, args.loop_points, spec, tmp)
            print(f"| {writers} | {sweep['rate']:,.0f} | {job['rate']:,.0f} | {batch['rate']:,.0f} | "
                  f"{sweep['rate'] / batch['rate']:.1f}x | {loop['rate']:,.0f} | {sweep['rate'] / loop['rate']:.0f}x | "
                  f"{sweep['median_us']:.1f} / {job['median_us']:.1f} | "
                  f"{sweep['max_ms']:,.0f} / {job['max_ms']:,.0f} | "
                  f"{sweep['cpu_us']:.0f} / {batch['cpu_us']:.0f} |", flush=True)
    finally:
        if server is not None:
            server.stop()
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()

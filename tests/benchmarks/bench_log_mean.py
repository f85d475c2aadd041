"""What `run.log` costs the script with each backend (README, Performance: "The script never waits").

    python tests/benchmarks/bench_log_mean.py [--points 1000000] [--mlflow-points 100000] [--steps 50000]
                                              [--backends sqlite,tensorboard,mlflow]

For each backend, in a fresh process:
(a) the mean (not median) cost of `run.log(name, float)` over --points calls (--mlflow-points for
    MLflow, whose server sets the pace: the calls and complete() for 1,000,000 take about 75 s): the script's wall
    time for the loop divided by the calls, the backend writing on the writer thread meanwhile
    (and the CPU time of the whole process, both threads, per call: steadier on a loaded machine);
    the anchor, measured in the same process, is a bare `list.append` of a tuple;
(b) the script's wall time to log those points, ending with `run.complete()` (which waits
    until the backend has everything), the full garbage-collector passes during the loop and the
    peak RSS added while logging (memory stays bounded when the backend is slower: back-pressure);
(c) a training-like loop of --steps steps (about 20 µs of arithmetic, then two `run.log` calls),
    its wall and CPU time with runbridge against the same loop without it (slowdown = ratio);
and the tracker's own logging call as a second anchor: `mlflow.log_metric` to the same
`mlflow server` over HTTP (mean of 2,000 calls) and tensorboardX's `SummaryWriter.add_scalar`
(mean of 100,000 calls). The MLflow backend talks to a real `mlflow server`
on 127.0.0.1 started for the benchmark. Not a test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the mlflow_server helper

from markdown_table import print_table  # noqa: E402

SCRIPT = r"""
import gc, json, math, resource, sys, time
points, steps, spec = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
clock = time.perf_counter

def train(log, steps):
    weights = [0.01 * i for i in range(256)]  # about 20 µs of arithmetic per step
    start, cpu = clock(), time.process_time()
    for step in range(steps):
        loss = math.fsum(w * w for w in weights) / 256.0
        weights = [w - 0.001 * w for w in weights]
        log("loss", loss)
        log("lr", 0.001)
    return clock() - start, time.process_time() - cpu

# the anchors first, before runbridge is imported
sink = []
append = sink.append
raw = 0.0
for chunk in range(10):  # in chunks, emptied between them, so the anchor does not raise the peak RSS
    start = clock()
    for i in range(points // 10):
        append(("loss", i, 0.5, None, time.time_ns() // 1000, False, ""))
    raw += clock() - start
    sink.clear()
bare = min(train(lambda name, value: None, steps) for _ in range(2))  # (wall, CPU) of the faster

from runbridge import Experiment, Workspace
full = [0]
gc.callbacks.append(lambda phase, info: full.__setitem__(0, full[0] + (phase == "start" and info["generation"] == 2)))
workspace = Workspace(backends=[spec])
run = Experiment(workspace, "mean").start_logging(outputs=None)
log = run.log
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
full[0] = 0
start, cpu = clock(), time.process_time()
for i in range(points):
    log("loss", 0.5)
loop, cpu = clock() - start, time.process_time() - cpu
gcs = full[0]
run.complete()
total = clock() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
run2 = Experiment(workspace, "train").start_logging(outputs=None)
trained = train(run2.log, steps)
run2.complete()
print(json.dumps({"mean_us": loop / points * 1e6, "cpu_us": cpu / points * 1e6, "raw_us": raw / points * 1e6,
                  "total_s": total, "full_gc": gcs, "rss_mb": rss / 1024, "train_s": trained[0],
                  "bare_s": bare[0], "train_cpu": trained[1], "bare_cpu": bare[1]}))
"""

MLFLOW_ANCHOR = r"""
import json, sys, time, mlflow
mlflow.set_tracking_uri(sys.argv[1])
n = int(sys.argv[2])
mlflow.set_experiment("anchor")
with mlflow.start_run():
    mlflow.log_metric("loss", 0.5)
    start = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", 0.5, step=i)
    took = time.perf_counter() - start
print(json.dumps({"mean_us": took / n * 1e6}))
"""

TBX_ANCHOR = r"""
import json, sys, time
from tensorboardX import SummaryWriter
folder, n = sys.argv[1], int(sys.argv[2])
writer = SummaryWriter(folder)
start = time.perf_counter()
for i in range(n):
    writer.add_scalar("loss", 0.5, i)
loop = time.perf_counter() - start
writer.close()
print(json.dumps({"mean_us": loop / n * 1e6, "total_s": time.perf_counter() - start}))
"""


def _run(script: str, *args: object) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                         timeout=3600)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--backends", default="sqlite,tensorboard,mlflow")
    parser.add_argument("--mlflow-points", type=int, default=100_000,
                        help="points for the MLflow backend (its server sets the script's pace)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            server = None
            if backend == "mlflow":
                from mlflow_fixtures import MlflowServer

                server = MlflowServer(Path(tmp) / "server").start()
            n = args.mlflow_points if backend == "mlflow" else args.points
            try:
                spec = {"sqlite": f"sqlite:{tmp}/runs.db", "tensorboard": f"tensorboard:{tmp}/tb",
                        "mlflow": f"mlflow:{server.url}" if server else ""}[backend]
                got = _run(SCRIPT, n, args.steps, spec)
                if backend == "mlflow":
                    anchor = _run(MLFLOW_ANCHOR, server.url, 2000)
                    own = f"mlflow.log_metric (HTTP) {anchor['mean_us']:.0f} µs"
                elif backend == "tensorboard":
                    anchor = _run(TBX_ANCHOR, f"{tmp}/tbx", min(n, 100_000))
                    own = f"tensorboardX add_scalar {anchor['mean_us']:.2f} µs"
                else:
                    anchor, own = None, ""
            finally:
                if server is not None:
                    server.stop()
            rows.append((backend, f"{n:,}", f"{got['mean_us']:.2f} µs (CPU {got['cpu_us']:.2f} µs)",
                         f"list.append {got['raw_us']:.2f} µs" + (f"; {own}" if own else ""),
                         f"{got['mean_us'] / got['raw_us']:.1f}x append"
                         + (f", {anchor['mean_us'] / got['mean_us']:.1f}x faster" if anchor else ""),
                         f"{got['total_s']:.1f} s", f"{got['full_gc']}", f"+{got['rss_mb']:.0f} MB",
                         f"{got['train_s']:.2f} s vs {got['bare_s']:.2f} s: {got['train_s'] / got['bare_s']:.2f}x "
                         f"(CPU {got['train_cpu']:.2f} s vs {got['bare_cpu']:.2f} s: "
                         f"{got['train_cpu'] / got['bare_cpu']:.2f}x)"))
            print(f"({backend} done)", file=sys.stderr, flush=True)
    print_table(("backend", "calls", "(a) run.log, mean per call", "anchors, same run", "ratio",
                 "(b) wall time: the calls + complete", "full GC passes", "peak RSS",
                 f"(c) training loop, {args.steps:,} steps x 2 logs: with vs without"), rows)


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    main()

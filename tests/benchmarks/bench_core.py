"""Core + SQLite benchmarks (README, Performance), printed as a table of ratios measured in one run.

    python tests/benchmarks/bench_core.py [--points 1000000]

(a) median cost of one run.log(name, float) call on the front end, vs a bare list.append loop;
(b), (c) ingest and reads against a plain table: tests/benchmarks/bench_store.py;
(d) peak memory (RSS) while logging N points, measured in a fresh process;
(e) mean (not median) cost of run.log over N calls while the writer thread writes the SQLite store,
    (and the process's CPU time per call, both threads: steadier than wall time on a loaded
    machine), vs the mean of the hot path alone (the writer kept idle) and of a bare list.append; the number
    of full garbage-collector passes during the N calls; the longest single call;
(f) the same mean and longest call with a second backend whose every write blocks for 50 ms.
Not a test: machines are noisy, so it prints figures and ratios instead of asserting times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from markdown_table import print_table

from runbridge import Experiment, Workspace


def bench_log_call(calls: int = 200_000, chunk: int = 1000) -> tuple[float, float]:
    """(median µs per run.log call, median µs per list.append of the same tuple)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Experiment(Workspace(backends=[f"sqlite:{tmp}/runs.db"]), "bench").start_logging(outputs=None)
        log = run.log
        per_call = []
        for _ in range(calls // chunk):
            t = time.perf_counter_ns()
            for i in range(chunk):
                log("loss", 0.5)
            per_call.append((time.perf_counter_ns() - t) / chunk / 1000)
        run.complete()
    sink: list = []
    append = sink.append
    raw = []
    for _ in range(calls // chunk):
        t = time.perf_counter_ns()
        for i in range(chunk):
            append(("loss", i, 0.5, None, time.time_ns() // 1000, False, ""))
        raw.append((time.perf_counter_ns() - t) / chunk / 1000)
        if len(sink) > 100_000:
            sink.clear()
    return statistics.median(per_call), statistics.median(raw)


PEAK_SCRIPT = """
import json, resource, sys, tempfile
from runbridge import Experiment, Workspace
points = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    run = Experiment(Workspace(backends=[f"sqlite:{tmp}/runs.db"]), "mem").start_logging(outputs=None)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(points):
        run.log("loss", i * 0.001)
    run.complete()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"start_kb": start, "peak_kb": peak}))
"""


def bench_peak_memory(points: int) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(points)], capture_output=True, text=True,
                         check=True)
    data = json.loads(out.stdout)
    return (data["peak_kb"] - data["start_kb"]) / 1024


MEAN_SCRIPT = """
import gc, json, sys, tempfile, time
import runbridge.buffer as buffer
points, mode = int(sys.argv[1]), sys.argv[2]
if mode == "idle":  # the hot path alone: the writer does nothing until the end
    buffer.MAX_PENDING = buffer.MAX_BACKLOG = 10 ** 12
    buffer.FLUSH_INTERVAL = 10 ** 6
from runbridge import Experiment, Workspace
full = [0]
gc.callbacks.append(lambda phase, info: full.__setitem__(0, full[0] + (phase == "start" and info["generation"] == 2)))
with tempfile.TemporaryDirectory() as tmp:
    backends = [f"sqlite:{tmp}/runs.db"] + ([f"slow:{tmp}"] if mode == "slow" else [])
    run = Experiment(Workspace(backends=backends), "mean").start_logging(outputs=None)
    log, longest, clock = run.log, 0.0, time.perf_counter
    full[0] = 0
    start, cpu = clock(), time.process_time()
    for i in range(points):
        t = clock()
        log("loss", 0.5)
        t = clock() - t
        if t > longest:
            longest = t
    total, cpu = clock() - start, time.process_time() - cpu
    gcs = full[0]
    t = clock()
    run.complete()
    end = clock() - t
    # the same loop with a bare list.append of the tuple run.log queues, for the ratio
    sink = []
    append = sink.append
    start = clock()
    for i in range(points):
        t = clock()
        append(("loss", i, 0.5, None, time.time_ns() // 1000, False, ""))
        t = clock() - t
        if t > 1.0:
            break
    raw = clock() - start
print(json.dumps({"mean_us": total / points * 1e6, "cpu_us": cpu / points * 1e6, "raw_us": raw / points * 1e6, "full_gc": gcs,
                  "longest_ms": longest * 1e3, "end_s": end}))
"""

SLOW_PLUGIN = """
import time
from runbridge.hookspecs import hookimpl
class SlowBackend:
    def __init__(self, location): pass
    @hookimpl
    def start_run(self, run): pass
    @hookimpl
    def write(self, run, records): time.sleep(0.05)
    @hookimpl
    def end_run(self, run, status): pass
    @hookimpl
    def read(self, experiment, run_id): return None
"""


def bench_log_mean(points: int, mode: str) -> dict[str, float]:
    """Run MEAN_SCRIPT in a fresh process; mode is "sqlite", "idle" or "slow"."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        if mode == "slow":  # a real plugin registered through a test-only entry point
            site = Path(tmp)
            (site / "bench_slow.py").write_text(SLOW_PLUGIN)
            dist = site / "bench_slow-0.dist-info"
            dist.mkdir()
            (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-slow\nVersion: 0\n")
            (dist / "entry_points.txt").write_text("[runbridge]\nslow = bench_slow:SlowBackend\n")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (tmp, env.get("PYTHONPATH", "")) if p)
        out = subprocess.run([sys.executable, "-c", MEAN_SCRIPT, str(points), mode], capture_output=True,
                             text=True, check=True, env=env, timeout=3600)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.points
    call_us, append_us = bench_log_call()
    peak_mb = bench_peak_memory(n)
    mean, idle, slow = (bench_log_mean(n, mode) for mode in ("sqlite", "idle", "slow"))
    rows = [
        ("(a) run.log(name, float), median per call", f"{call_us:.2f} µs", f"list.append {append_us:.2f} µs",
         f"{call_us / append_us:.1f}x the bare append", "≤ 3 µs"),
        (f"(d) peak RSS while logging {n:,} points", f"+{peak_mb:.0f} MB", "", "", "< 100 MB"),
        (f"(e) run.log, mean over {n:,} calls, writer writing sqlite",
         f"{mean['mean_us']:.2f} µs (CPU, both threads: {mean['cpu_us']:.2f} µs)",
         f"list.append {mean['raw_us']:.2f} µs; hot path alone {idle['mean_us']:.2f} µs",
         f"{mean['mean_us'] / mean['raw_us']:.1f}x append, {mean['mean_us'] / idle['mean_us']:.1f}x hot path",
         "≤ 1.5 µs"),
        ("(e) full GC passes / longest call, during those calls",
         f"{mean['full_gc']} / {mean['longest_ms']:.1f} ms", f"hot path alone {idle['full_gc']} / "
         f"{idle['longest_ms']:.1f} ms", "", ""),
        (f"(f) same with a 2nd backend blocking 50 ms per write", f"{slow['mean_us']:.2f} µs, longest "
         f"{slow['longest_ms']:.1f} ms", "", f"{slow['mean_us'] / mean['mean_us']:.1f}x (e)", "longest < 1 s"),
    ]
    print_table(("measure", "runbridge", "raw library", "ratio", "target"), rows)


if __name__ == "__main__":
    main()

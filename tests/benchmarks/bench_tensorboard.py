"""TensorBoard backend benchmarks (README, Performance), printed as a table of ratios measured in one run.

    python tests/benchmarks/bench_tensorboard.py [--points 100000] [--repeat 3]
    python tests/benchmarks/bench_tensorboard.py --million [--repeat 1]

(a) writing N scalar points: runbridge (`run.log(name, float, step=i)` in a loop, then `flush`,
    into `tensorboard:<tmp>`) vs tensorboardX (`SummaryWriter.add_scalar` in a loop, then `close`);
    also the backend's `write` hook alone on the same N records, for reference;
(b) reading them back: `get_metrics()` of a run fetched through a fresh workspace vs TensorBoard's
    own `EventAccumulator` with sampling off (size_guidance 0) on the same run folder, and on the
    tensorboardX folder; also `Run(experiment, id)` + `get_metrics()` together (the core reads the
    run once to fetch it and once more for get_metrics).
--million: reading a run of 1,000,000 points in one metric (written through the backend's write
    hook in the core's 10,000-record batches): the backend's `read` hook and `Run(experiment, id)`
    + `get_metrics()` against `EventAccumulator` with sampling off (size_guidance 0) on the same
    run folder, alternating, best of --repeat.
Ratios are "other / runbridge": above 1.0x means runbridge is faster. Best of --repeat runs.
Not a test: machines are noisy, so it prints figures instead of asserting times.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

from markdown_table import print_table

from runbridge import Experiment, Run, Workspace
from runbridge.backends import open_backend
from runbridge.records import Metric, RunInfo, now_us


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(fn())
    return min(times)


def bench(points: int, repeat: int) -> list[tuple[str, float, float]]:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboardX import SummaryWriter

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-tb-"))
    values = [i * 0.001 for i in range(points)]
    state: dict = {}

    def runbridge_write() -> float:
        logdir = tmp / f"rb-{len(state)}"
        run = Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "bench").start_logging(outputs=None)
        log = run.log
        t = time.perf_counter()
        for i, v in enumerate(values):
            log("loss", v, step=i)
        run.flush()
        elapsed = time.perf_counter() - t
        run.complete()
        state["rb"] = (logdir, run.id)
        return elapsed

    def hook_write() -> float:
        logdir = tmp / f"hook-{len(state)}"
        state[f"hook-{len(state)}"] = 1
        backend = open_backend(f"tensorboard:{logdir}")
        info = RunInfo("hook", "bench", start_time=now_us())
        backend.start_run(info)
        t0 = now_us()
        records = [Metric("loss", i, v, i, t0 + i) for i, v in enumerate(values)]
        t = time.perf_counter()
        for k in range(0, points, 10_000):  # the core's batch size
            backend.write(info, records[k:k + 10_000])
        return time.perf_counter() - t

    def tbx_write() -> float:
        logdir = tmp / f"tbx-{len(state)}"
        state[f"tbx-{len(state)}"] = 1
        t = time.perf_counter()
        w = SummaryWriter(str(logdir))
        add = w.add_scalar
        for i, v in enumerate(values):
            add("loss", v, i)
        w.close()
        state["tbx"] = logdir
        return time.perf_counter() - t

    rb_w = _best(runbridge_write, repeat)
    tbx_w = _best(tbx_write, repeat)
    hook_w = _best(hook_write, repeat)
    rows.append((f"write {points:,} points: run.log loop + flush vs tensorboardX add_scalar loop", rb_w, tbx_w))
    rows.append((f"write {points:,} points: backend write hook alone vs tensorboardX", hook_w, tbx_w))

    logdir, run_id = state["rb"]
    folder = logdir / "bench" / run_id

    def runbridge_read(construct_inside: bool = False) -> float:
        t = time.perf_counter()
        run = Run(Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "bench"), run_id)
        if not construct_inside:
            t = time.perf_counter()
        got = run.get_metrics()["loss"]
        elapsed = time.perf_counter() - t
        assert got == values, "read-back mismatch"
        return elapsed

    def accumulate(path: Path, kind: str) -> float:
        t = time.perf_counter()
        acc = ea.EventAccumulator(str(path), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 0,
                                                            ea.HISTOGRAMS: 0, ea.AUDIO: 0, ea.COMPRESSED_HISTOGRAMS: 0},
                                  purge_orphaned_data=False)
        acc.Reload()
        got = acc.Tensors("loss") if kind == "tensors" else acc.Scalars("loss")
        elapsed = time.perf_counter() - t
        assert len(got) == points
        return elapsed

    rb_r = _best(runbridge_read, repeat)
    rb_fresh = _best(lambda: runbridge_read(True), repeat)
    ea_same = _best(lambda: accumulate(folder, "tensors"), repeat)
    ea_tbx = _best(lambda: accumulate(state["tbx"], "scalars"), repeat)
    rows.append((f"read {points:,} points: get_metrics vs EventAccumulator (same run folder)", rb_r, ea_same))
    rows.append((f"read {points:,} points: get_metrics vs EventAccumulator (tensorboardX folder)", rb_r, ea_tbx))
    rows.append((f"read {points:,} points: Run(exp, id) + get_metrics vs EventAccumulator (same folder)",
                 rb_fresh, ea_same))
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of `fn()`; CPU time (all threads of this process) is steadier on a
    shared machine."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _accumulate(folder: Path, points: int) -> None:
    """TensorBoard's EventAccumulator, sampling off, loading `folder`'s "loss" series."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 0,
                                                          ea.HISTOGRAMS: 0, ea.AUDIO: 0, ea.COMPRESSED_HISTOGRAMS: 0},
                              purge_orphaned_data=False)
    acc.Reload()
    assert len(acc.Tensors("loss")) == points


def bench_million(points: int, repeat: int) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """Reading one run of `points` points: runbridge's reads against EventAccumulator's, each as
    the best (wall, CPU) seconds of `repeat` alternating rounds."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-tb-million-"))
    spec = f"tensorboard:{tmp}"
    backend = open_backend(spec)
    info = RunInfo("million", "bench", display_name="million", start_time=now_us())
    backend.start_run(info)
    t0 = now_us()
    values = [i * 0.001 for i in range(points)]
    for k in range(0, points, 10_000):  # the core's batch size
        backend.write(info, [Metric("loss", i, values[i], i, t0 + i) for i in range(k, min(points, k + 10_000))])
    backend.end_run(info._replace(end_time=now_us()), "Completed")
    [folder] = [p for p in (tmp / "bench").iterdir() if not p.name.startswith(".")]

    def hook_read() -> None:
        assert len(open_backend(spec).read("bench", "million").records) == points

    def run_read() -> None:
        got = Run(Experiment(Workspace(backends=[spec]), "bench"), "million").get_metrics()["loss"]
        assert got == values, "read-back mismatch"

    times: dict[str, list[tuple[float, float]]] = {"hook": [], "run": [], "ea": []}
    try:
        for _ in range(repeat):  # alternating, so load on the shared machine hits all three alike
            for key, fn in (("hook", hook_read), ("ea", lambda: _accumulate(folder, points)), ("run", run_read)):
                times[key].append(_timed(fn))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def best(key: str) -> tuple[float, float]:
        return min(t[0] for t in times[key]), min(t[1] for t in times[key])

    return [(f"read {points:,} points: backend `read` hook", best("hook"), best("ea")),
            (f"read {points:,} points: `Run(exp, id)` + `get_metrics()`", best("run"), best("ea"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 3; 1 with --million)")
    parser.add_argument("--million", action="store_true", help="read a 1,000,000-point run (--points ignored)")
    args = parser.parse_args()
    if args.million:
        rows = bench_million(1_000_000, args.repeat or 1)
        print_table(["measure", "runbridge (wall, CPU)", "EventAccumulator, sampling off (wall, CPU)", "ratio (wall, CPU)"],
                    [(name, f"{ours[0]:.2f} s, {ours[1]:.2f} s", f"{other[0]:.2f} s, {other[1]:.2f} s",
                      f"{other[0] / ours[0]:.2f}x, {other[1] / ours[1]:.2f}x") for name, ours, other in rows])
        print("ratio = EventAccumulator / runbridge (above 1.0x: runbridge is faster; target >= 3x)")
        return
    rows = bench(args.points, args.repeat or 3)
    print_table(["benchmark", "runbridge", "other", "ratio"],
                [(name, f"{ours:.3f} s", f"{other:.3f} s", f"{other / ours:.2f}x") for name, ours, other in rows])
    print("ratio = other / runbridge (above 1.0x: runbridge is faster)")


if __name__ == "__main__":
    main()

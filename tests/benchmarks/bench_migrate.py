"""Migration benchmark (README, "Moving runs between trackers"): TensorBoard event files -> MLflow (SQLite store).

    python tests/benchmarks/bench_migrate.py [--runs 20] [--points 50000] [--repeat 2]

The source is what users migrate: --runs folders written by tensorboardX's `SummaryWriter`
(`add_scalar`, one tag, --points steps each). Both sides write into a fresh `sqlite:///` MLflow
store:

* runbridge: `runbridge.migrate("tensorboard:<logdir>", "mlflow:sqlite:///...")` (no progress
  bar), once with its default read-back check of every value, once with `verify=False`;
* hand-written: for each folder, TensorBoard's `EventAccumulator` with sampling off, then
  `MlflowClient.create_run` + `log_batch` (1,000 metrics per call, MLflow's limit) +
  `set_terminated`: what one would write by hand, with no exactness check, no resume, no tags.

Each contender writes into its own fresh store (MLflow's tables created before the clock starts);
the three run back to back, --repeat times, and the best time of each is shown. Records per second
= points copied / wall time. Ratio = hand-written time / runbridge time (above 1.0x: runbridge is
faster). Not a test: machines are noisy, so it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path


def write_sources(logdir: Path, runs: int, points: int) -> None:
    from tensorboardX import SummaryWriter

    for r in range(runs):
        writer = SummaryWriter(str(logdir / f"run_{r:02d}"), max_queue=10_000, flush_secs=3600)
        for step in range(points):
            writer.add_scalar("loss", 1.0 / (step + 1 + r), step)
        writer.close()


def hand_written(logdir: Path, uri: str) -> int:
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(logdir.name)
    copied = 0
    for folder in sorted(p for p in logdir.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
        acc.Reload()
        run = client.create_run(experiment_id, run_name=folder.name)
        for tag in acc.Tags()[SCALARS]:
            metrics = [Metric(tag, e.value, int(e.wall_time * 1000), e.step) for e in acc.Scalars(tag)]
            for i in range(0, len(metrics), 1000):
                client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
            copied += len(metrics)
        client.set_terminated(run.info.run_id)
    return copied


def timed(fn) -> tuple[float, object]:
    gc.collect()
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved repeats; the best of each is shown")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from runbridge.migrate import migrate

    tmp = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    logdir = tmp / "tb-logs"
    t_src, _ = timed(lambda: write_sources(logdir, args.runs, args.points))
    total = args.runs * args.points
    print(f"source: {args.runs} tensorboardX runs x {args.points:,} points = {total:,} points "
          f"(written in {t_src:.1f}s) under {tmp}")

    def run_migrate(name: str, verify: bool):
        report = migrate(f"tensorboard:{logdir}", f"mlflow:sqlite:///{tmp / name}", progress=False,
                         verify=verify)
        assert report.ok and len(report.copied) == args.runs, report.summary()
        assert report.records >= total, report.records
        if verify:
            assert report.differences == [], report.summary()
        return report

    def fresh_store(name: str) -> str:
        from mlflow import MlflowClient

        uri = f"sqlite:///{tmp / name}"
        MlflowClient(uri).search_experiments()  # create MLflow's tables outside the timing, for both
        return name

    def hand(name: str) -> int:
        n = hand_written(logdir, f"sqlite:///{tmp / name}")
        assert n == total, n
        return n

    # Interleaved, best of --repeat: the machine's load changes over minutes, so each repeat runs
    # the three contenders back to back.
    best = {"hand": float("inf"), "verify": float("inf"), "fast": float("inf")}
    for i in range(args.repeat):
        for key, fn in (("hand", lambda n: hand(n)), ("verify", lambda n: run_migrate(n, True)),
                        ("fast", lambda n: run_migrate(n, False))):
            name = fresh_store(f"{key}-{i}.db")
            seconds, _ = timed(lambda: fn(name))
            best[key] = min(best[key], seconds)
            print(f"  repeat {i + 1}: {key:<6} {seconds:7.1f}s", flush=True)
    t_hand = best["hand"]
    rows = [("hand-written EventAccumulator + log_batch", t_hand),
            ("runbridge migrate (reads every value back)", best["verify"]),
            ("runbridge migrate, verify=False", best["fast"])]
    t_again, report = timed(lambda: migrate(f"tensorboard:{logdir}", f"mlflow:sqlite:///{tmp / 'verify-0.db'}",
                                            progress=False))
    assert report.copied == [] and len(report.skipped) == args.runs

    print()
    print(f"| {'copy ' + format(total, ',') + ' points, TensorBoard -> mlflow:sqlite':<52} | {'seconds':>8} "
          f"| {'records/s':>10} | {'ratio (hand / this)':>19} |")
    print(f"|{'-' * 54}|{'-' * 10}|{'-' * 12}|{'-' * 21}|")
    for name, seconds in rows:
        print(f"| {name:<52} | {seconds:8.1f} | {total / seconds:10,.0f} | {t_hand / seconds:18.2f}x |")
    print(f"| {'second runbridge migrate (everything already there)':<52} | {t_again:8.1f} | {'-':>10} | {'-':>19} |")


if __name__ == "__main__":
    main()

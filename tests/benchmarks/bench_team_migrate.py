"""Moving a team's history into an MLflow tracking server on PostgreSQL (README, Scaling out),
printed as a table of ratios measured in one run.

    python tests/benchmarks/bench_team_migrate.py [--machines 4] [--runs 5] [--points 20000]

Starts a throw-away PostgreSQL server and an ``mlflow server --workers 4`` on it (as the tests
do). Each of --machines source machines holds --runs runs of --points points: even machines a
built-in SQLite store (logged with runbridge), odd ones a tensorboardX log folder. Timed:
- ``runbridge migrate SRC mlflow:http://...`` of one machine alone, then of every machine at once
  (one process per machine, as each machine would run its own), then all of them again (nothing
  left to copy);
- plain MLflow, the write floor: one process per machine creating the same runs with
  ``MlflowClient.log_batch`` (1,000 metrics per call) from values already in memory, all at once.
Records/s = points copied / wall time; ratio = runbridge's rate / plain ``log_batch``'s (runbridge
also reads each source and checks every value it wrote). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def make_sources(root: Path, machines: int, runs: int, points: int) -> list[str]:
    """One source store per machine, alternating the built-in SQLite store and a tensorboardX folder."""
    specs = []
    for m in range(machines):
        if m % 2 == 0:
            from runbridge import Experiment, Workspace

            spec = f"sqlite:{root / f'machine{m}' / 'runs.db'}"
            exp = Experiment(Workspace(backends=[spec]), f"machine{m}")
            for r in range(runs):
                run = exp.start_logging(display_name=f"run{r}", outputs=None)
                for i in range(points):
                    run.log("loss", 1.0 / (i + 1 + r), step=i)
                run.complete()
        else:
            from tensorboardX import SummaryWriter

            spec = f"tensorboard:{root / f'machine{m}' / 'tb'}"
            for r in range(runs):
                # a folder's name is its run id, and run ids are unique across a tracker
                writer = SummaryWriter(str(root / f"machine{m}" / "tb" / f"machine{m}" / f"m{m}-run{r}"),
                                       max_queue=10_000, flush_secs=3600)
                for i in range(points):
                    writer.add_scalar("loss", 1.0 / (i + 1 + r), i)
                writer.close()
        specs.append(spec)
    return specs


def migrate_at_once(sources: list[str], dst: str, cwd: Path) -> float:
    """Wall time of one `runbridge migrate` process per source, all started together."""
    runbridge = Path(sys.executable).with_name("runbridge")
    start = time.perf_counter()
    procs = [subprocess.Popen([str(runbridge), "migrate", src, dst, "--no-progress"], cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for src in sources]
    for proc in procs:
        out, _ = proc.communicate(timeout=7200)
        if proc.returncode != 0:
            raise RuntimeError(f"runbridge migrate failed:\n{out[-3000:]}")
    return time.perf_counter() - start


def plain_writer(uri: str, experiment: str, runs: int, points: int) -> None:
    """One machine's runs written with MlflowClient.log_batch (the worker of `plain_at_once`)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri)
    eid = client.create_experiment(experiment)
    base = int(time.time() * 1000)
    for r in range(runs):
        values = [1.0 / (i + 1 + r) for i in range(points)]
        mid = client.create_run(eid, run_name=f"run{r}").info.run_id
        for lo in range(0, points, 1000):
            client.log_batch(mid, metrics=[Metric("loss", values[i], base + i, i)
                                           for i in range(lo, min(points, lo + 1000))])
        client.set_terminated(mid)


def plain_at_once(uri: str, machines: int, runs: int, points: int, cwd: Path) -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--plain", uri, f"plain-machine{m}", str(runs), str(points)],
                              cwd=cwd, stdout=subprocess.DEVNULL) for m in range(machines)]
    for proc in procs:
        if proc.wait(timeout=7200) != 0:
            raise RuntimeError("plain log_batch writer failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--points", type=int, default=20_000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    sys.path.insert(0, str(TESTS))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow_fixtures import MlflowServer
    from postgres_fixtures import start_postgres

    tmp = Path(tempfile.mkdtemp(prefix="bench-team-migrate-"))
    sources = make_sources(tmp / "sources", args.machines, args.runs, args.points)
    per_machine = args.runs * args.points
    postgres = start_postgres()
    server = None
    try:
        server = MlflowServer(tmp / "server", backend_store_uri=postgres.new_database("bench"), workers=4).start()
        dst = f"mlflow:{server.url}"
        alone = migrate_at_once(sources[:1], dst, tmp)
        together = migrate_at_once(sources[1:], dst, tmp)
        again = migrate_at_once(sources, dst, tmp)
        plain = plain_at_once(server.url, args.machines - 1, args.runs, args.points, tmp)
    finally:
        if server is not None:
            server.stop()
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    others = args.machines - 1
    plain_rate = others * per_machine / plain
    print(f"{args.runs} runs x {args.points:,} points per machine (SQLite and TensorBoard sources alternating) into "
          f"`mlflow server --workers 4` on PostgreSQL, {os.cpu_count()} cores; ratio = runbridge / plain log_batch")
    print("| what | machines at once | points | seconds | records/s | ratio |")
    print("|---|--:|--:|--:|--:|--:|")
    print(f"| `runbridge migrate` ({sources[0].split(':')[0]} source) | 1 | {per_machine:,} | {alone:.1f} | "
          f"{per_machine / alone:,.0f} | – |")
    print(f"| `runbridge migrate`, one per machine | {others} | {others * per_machine:,} | {together:.1f} | "
          f"{others * per_machine / together:,.0f} | {others * per_machine / together / plain_rate:.2f}x |")
    print(f"| plain `MlflowClient.log_batch`, one process per machine | {others} | {others * per_machine:,} | "
          f"{plain:.1f} | {plain_rate:,.0f} | 1.00x |")
    print(f"| `runbridge migrate` again, every machine (nothing to copy) | {args.machines} | 0 | {again:.1f} | – | – |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--plain":
        plain_writer(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()

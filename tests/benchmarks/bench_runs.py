"""The run list at scale (README, Performance): the built-in store against MLflow, in one run.

    python tests/benchmarks/bench_runs.py [--sizes 1000,10000]

For each size N, N completed runs of one experiment, each with 10 metrics x 100 points and two
tags, are written to the built-in store (through its write hook, as the writer thread does) and
to an MLflow SQLite store. Then, in fresh workspaces:
(a) `list(experiment.get_runs())` (a `Run` per run, opened from its header);
(b) `experiment.get_runs_frame()` (last/min/max of every metric, tags, status);
(c) `runbridge runs --limit N`, run in this process with click's runner, and as a new process
    (interpreter start-up and imports included);
against `mlflow.search_runs` over the same runs (a DataFrame of the last value of every metric,
tags and params). MLflow's store is filled the fast way: one run logged through `MlflowClient`,
its rows then copied under new run ids in MLflow's own tables (logging 10,000 runs through
MLflow would take most of an hour), all but the metric history: `search_runs` reads the latest
value of each metric from its own table, and copying 10 million history rows takes minutes. Stores live in /dev/shm where there is one (the figures are
about reading, not the disk). About 90 s. Not a test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from click.testing import CliRunner

from runbridge import Experiment, Workspace
from runbridge.cli import main as cli
from runbridge.records import COMPLETED, Metric, RunInfo, Tag, now_us
from runbridge.runcore import TYPE_TAG
from markdown_table import print_table

METRICS, POINTS = 10, 100


def _timed(work) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def fill_runbridge(spec: str, runs: int) -> None:
    backend = Workspace(backends=[spec]).backends[0]
    t0 = now_us() - runs * 10_000
    for r in range(runs):
        start = t0 + r * 10_000
        info = RunInfo(f"bench_{r:06d}_{uuid.uuid4().hex[:6]}", "bench", None, None, "Running", start)
        backend.start_run(info)
        points = [Metric(f"metric_{m}", i, (r + m + i) * 0.001, i, start + m * POINTS + i, False, "", "w")
                  for m in range(METRICS) for i in range(POINTS)]
        backend.write(info, points + [Tag(TYPE_TAG, "interactive", start), Tag("lr", str(r % 7), start)])
        backend.end_run(info._replace(status=COMPLETED, end_time=start + 5_000), COMPLETED)


def mlflow_template(tmp: str) -> Path:
    """An MLflow SQLite store holding one run of the benchmark's shape, logged through MlflowClient."""
    from mlflow.entities import Metric as MlflowMetric, RunTag
    from mlflow.tracking import MlflowClient

    db = Path(tmp) / "mlflow-template.db"
    client = MlflowClient(f"sqlite:///{db}")
    experiment_id = client.create_experiment("bench")
    template = client.create_run(experiment_id).info.run_id
    t0 = int(time.time() * 1000)
    client.log_batch(template, metrics=[MlflowMetric(f"metric_{m}", i * 0.001, t0 + i, i)
                                        for m in range(METRICS) for i in range(POINTS)],
                     tags=[RunTag("lr", "3")])
    client.set_terminated(template)
    return db


def fill_mlflow(template: Path, db: Path, runs: int) -> str:
    """A copy of the template store whose run is copied under `runs - 1` new ids, in MLflow's own
    tables; the experiment id."""
    shutil.copyfile(template, db)
    conn = sqlite3.connect(db, isolation_level=None)
    (run_id, experiment_id), = conn.execute("SELECT run_uuid, experiment_id FROM runs").fetchall()
    conn.execute("CREATE TEMP TABLE ids (run_uuid TEXT)")
    conn.executemany("INSERT INTO ids VALUES (?)", [(uuid.uuid4().hex,) for _ in range(runs - 1)])
    conn.execute("BEGIN")
    for table in ("runs", "latest_metrics", "tags", "params"):  # not the history: see the docstring
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        chosen = ", ".join("ids.run_uuid" if c == "run_uuid" else f"t.{c}" for c in columns)
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {chosen} FROM {table} t, ids"
                     " WHERE t.run_uuid = ?", (run_id,))
    conn.execute("COMMIT")
    conn.close()
    return str(experiment_id)


def measure(tmp: str, runs: int, template: Path) -> dict[str, float]:
    spec = f"sqlite:{tmp}/runs-{runs}.db"
    fill_runbridge(spec, runs)
    out: dict[str, float] = {}
    out["get_runs"], got = _timed(lambda: list(Experiment(Workspace(backends=[spec]), "bench").get_runs()))
    assert len(got) == runs
    out["frame"], frame = _timed(lambda: Experiment(Workspace(backends=[spec]), "bench").get_runs_frame())
    assert len(frame) == runs and f"metric_{METRICS - 1}.max" in frame.columns
    out["cli"], result = _timed(lambda: CliRunner().invoke(
        cli, ["runs", "-e", "bench", "--limit", str(runs), "--backend", spec]))
    assert result.exit_code == 0 and len(result.output.splitlines()) == runs + 1, result.output[-500:]
    command = [str(Path(sys.executable).with_name("runbridge")), "runs", "-e", "bench", "--limit", str(runs),
               "--backend", spec]
    out["cli_process"], done = _timed(lambda: subprocess.run(command, capture_output=True, text=True, check=True))
    assert len(done.stdout.splitlines()) == runs + 1

    import mlflow

    db = Path(tmp) / f"mlflow-{runs}.db"
    experiment_id = fill_mlflow(template, db, runs)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    out["mlflow"], found = _timed(lambda: mlflow.search_runs([experiment_id], max_results=runs + 1))
    assert len(found) == runs and f"metrics.metric_{METRICS - 1}" in found.columns
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of runs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, first = [], None
    import pandas  # noqa: F401 - loaded before any timing, as mlflow is
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        template = mlflow_template(tmp)
        for n in sizes:
            m = measure(tmp, n, template)
            first = first or (n, m)
            for key, label in (("get_runs", "`list(get_runs())`"), ("frame", "`get_runs_frame()`"),
                               ("cli", "`runbridge runs --limit N` (in process)"),
                               ("cli_process", "`runbridge runs --limit N` (a new process)")):
                growth = "" if first[0] == n else f"{m[key] / first[1][key]:.1f}x for {n // first[0]}x the runs"
                rows.append((f"{label}, {n:,} runs", f"{m[key]:.3f} s", f"{m['mlflow']:.3f} s",
                             f"{m['mlflow'] / m[key]:.1f}x", growth, "≤ 1 s at 10,000"))
    print_table(("measure", "runbridge", "mlflow.search_runs", "ratio (MLflow / runbridge)",
                 "growth from the smallest size", "target"), rows)


if __name__ == "__main__":
    main()

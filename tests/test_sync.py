"""`runbridge sync` repairs what a failing backend missed, its native views included, and calls a
run repaired only when the backend reads back everything."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

from mlflow import MlflowClient

from runbridge import BackendFailedWarning, Experiment, Run, Workspace


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    runbridge = Path(sys.executable).with_name("runbridge")
    return subprocess.run([str(runbridge), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_flush_whose_native_log_batch_failed_is_completed_natively_by_sync(tmp_path):
    """The record stream of a flush reached MLflow but its `log_batch` did not (the database was
    locked by another writer past its busy timeout): reads are exact, and sync makes MLflow's own
    metric history (what the MLflow UI charts) whole again."""
    db = tmp_path / "mlflow.db"
    specs = [f"sqlite:{tmp_path / 'runs.db'}", f"mlflow:sqlite:///{db}"]
    run = Experiment(Workspace(backends=specs), "half").start_logging(outputs=None)
    for i in range(100):
        run.log("loss", 1.0 / (i + 1), step=i)
    run.flush()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # readers go on, writers wait, then fail: "database is locked"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(100, 200):
                run.log("loss", 1.0 / (i + 1), step=i)
            run.flush()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [type(w.message) for w in caught] == [BackendFailedWarning], [str(w.message) for w in caught]
    run.complete()

    client = MlflowClient(f"sqlite:///{db}")
    [native] = client.search_runs([client.get_experiment_by_name("half").experiment_id])
    assert len(client.get_metric_history(native.info.run_id, "loss")) == 100  # the native view is short
    exact = Run(Experiment(Workspace(backends=[specs[1]]), "half"), run.id).get_metrics()["loss"]
    assert len(exact) == 200  # while the exact stream holds every point

    synced = cli("sync", "--no-progress", "--backend", ",".join(specs), cwd=tmp_path)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert synced.stdout.startswith("Repaired 1 run(s)"), synced.stdout
    history = client.get_metric_history(native.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(i, 1.0 / (i + 1)) for i in range(200)]
    assert client.get_run(native.info.run_id).info.status == "FINISHED"
    again = cli("sync", "--no-progress", "--backend", ",".join(specs), cwd=tmp_path)
    assert again.stdout.startswith("Nothing to sync"), again.stdout
    assert len(client.get_metric_history(native.info.run_id, "loss")) == 200  # nothing duplicated

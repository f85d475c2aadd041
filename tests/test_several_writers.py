"""Several processes, one run: data-parallel ranks log the same value at the same step at the
same instants, and every point arrives in every backend (MLflow's native history included),
also when MLflow was down and `runbridge sync` repairs it afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlflow_fixtures import MlflowServer
from rank_helpers import native_history, start_ranks, wait_ranks
from runbridge import BackendFailedWarning, Experiment, Run, Workspace

RANKS, POINTS = 4, 2000

RANK = textwrap.dedent("""
    import os, sys, time
    from runbridge import Run

    start = float(sys.argv[1])
    run = Run.get_context()
    for i in range(%(points)d):
        target = start + i * 0.0005  # every rank logs point i at the same instant (after an all-reduce)
        while time.time() < target:
            pass
        run.log("loss", 1.0 / (i + 1), step=i)
    run.flush()
""" % {"points": POINTS})


def run_ranks(tmp_path: Path, run: Run, extra_env: dict[str, str] | None = None) -> None:
    """Start RANKS processes attached to `run` (as a launcher would: the run's environment plus
    RANK/WORLD_SIZE) and wait for them."""
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    start = time.time() + 3.0  # every rank imports runbridge before the first point
    env = {**os.environ, **run.process_environment(), **(extra_env or {})}
    wait_ranks(start_ranks(script, RANKS, env, [repr(start)], cwd=tmp_path))


def assert_every_point_arrived(spec: str, experiment: str, run_id: str) -> None:
    losses = Run(Experiment(Workspace(backends=[spec]), experiment), run_id).get_metrics_frame("loss")
    assert len(losses) == RANKS * POINTS, spec
    # each rank's points are all there, step by step, with the value it logged
    assert sorted(losses["step"].tolist()) == sorted(list(range(POINTS)) * RANKS), spec
    assert all(value == 1.0 / (step + 1) for step, value in zip(losses["step"], losses["value"])), spec
    # logging order is time order
    assert losses["timestamp"].is_monotonic_increasing, spec


@pytest.mark.slow
def test_ranks_logging_identical_points_at_the_same_instants_lose_nothing(tmp_path, mlflow_server, fast_mlflow_http):
    specs = [f"sqlite:{tmp_path / 'runs.db'}", f"tensorboard:{tmp_path / 'tb'}", f"mlflow:{mlflow_server.url}"]
    run = Experiment(Workspace(backends=specs), "ddp-same-instants").start_logging(outputs=None)
    run_ranks(tmp_path, run)
    run.complete()
    for spec in specs:
        assert_every_point_arrived(spec, "ddp-same-instants", run.id)
    history = native_history(mlflow_server.url, "ddp-same-instants", run.id)
    assert len(history) == RANKS * POINTS
    assert sorted(m.step for m in history) == sorted(list(range(POINTS)) * RANKS)


@pytest.mark.slow
def test_ranks_logging_while_mlflow_is_down_are_all_repaired_by_sync(tmp_path, fast_mlflow_http):
    server = MlflowServer(tmp_path / "server")  # its port is chosen, nothing listens there yet
    specs = [f"sqlite:{tmp_path / 'runs.db'}", f"mlflow:{server.url}"]
    with pytest.warns(BackendFailedWarning, match="disabled"):
        run = Experiment(Workspace(backends=specs), "ddp-down").start_logging(outputs=None)
    run_ranks(tmp_path, run)
    run.complete()  # MLflow stays disabled for this run: no second warning
    assert_every_point_arrived(specs[0], "ddp-down", run.id)
    spooled = list(Path(os.environ["RUNBRIDGE_SPOOL"]).glob("*/*.jsonl"))
    assert len(spooled) == RANKS + 1  # one spool file per process that missed MLflow

    env = {**os.environ, "RUNBRIDGE_BACKENDS": ",".join(specs)}
    runbridge = Path(sys.executable).with_name("runbridge")
    # while the server is still down: one planned repair, one failure line, exit 1, nothing lost
    planned = subprocess.run([str(runbridge), "sync", "--dry-run"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert planned.returncode == 0 and "would repair 1 " in planned.stdout, planned.stdout + planned.stderr
    assert planned.stdout.count(run.id) == 1, planned.stdout
    down = subprocess.run([str(runbridge), "sync", "--no-progress"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert down.returncode == 1 and down.stdout.count("NOT repaired") == 1, down.stdout + down.stderr
    assert "1 repair(s) could not be completed" in down.stderr
    assert len(list(Path(os.environ["RUNBRIDGE_SPOOL"]).glob("*/*.jsonl"))) == RANKS + 1

    server.start()
    try:
        synced = subprocess.run([str(runbridge), "sync", "--no-progress"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert synced.stdout.startswith("Repaired 1 run(s)"), synced.stdout
        assert_every_point_arrived(specs[1], "ddp-down", run.id)
        assert len(native_history(server.url, "ddp-down", run.id)) == RANKS * POINTS
        assert Run(Experiment(Workspace(backends=[specs[1]]), "ddp-down"), run.id).get_status() == "Completed"
        again = subprocess.run([str(runbridge), "sync", "--no-progress"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
        assert again.stdout.startswith("Nothing to sync"), again.stdout
    finally:
        server.stop()


def test_a_rank_forked_while_its_parent_writes_the_sqlite_store_writes_its_own_points(tmp_path):
    """fork() waits for a transaction the parent's writer thread is in: SQLite keeps one set of
    lock books per process, and a child that inherited "the write lock is held" saw its own new
    connections fail with "database is locked", so its points ended in the spool, never in the
    store (a standalone script with forked workers lost one worker's points about one run in three)."""
    import threading

    import runbridge_sqlite.backend as sqlite_backend
    from runbridge.records import Metric, RunInfo

    path = str(tmp_path / "runs.db")
    parent = sqlite_backend.SQLiteBackend(path)
    info = RunInfo("forked", "exp", None, None, "Running", 1_700_000_000_000_000)
    parent.start_run(info)
    inside = threading.Event()

    def slow_transaction(conn) -> None:
        inside.set()
        time.sleep(0.5)  # the write lock is held meanwhile

    writer = threading.Thread(target=parent._transaction, args=(slow_transaction,))
    writer.start()
    inside.wait(10)
    pid = os.fork()
    if pid == 0:  # the rank: its own backend, as a forked child's workspace opens
        code = 1
        try:
            sqlite_backend.BUSY_TIMEOUT_MS = 3000  # fail within seconds, not 30, if still locked
            child = sqlite_backend.SQLiteBackend(path)
            child.write(info, [Metric("from_rank", 0, 1.5, None, 1_700_000_000_000_001, False, "", "rank")])
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported by the exit code
            print(f"child write failed: {exc!r}", file=sys.stderr)
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    writer.join()
    assert os.waitstatus_to_exitcode(status) == 0
    back = sqlite_backend.SQLiteBackend(path).read("exp", "forked")
    assert [(r.name, r.value) for r in back if type(r) is Metric] == [("from_rank", 1.5)]

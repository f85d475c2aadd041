"""Many training nodes, one MLflow tracking server on PostgreSQL (README, Scaling out).

Eight processes, each with only what a launcher gives a node (the backend spec, RANK, WORLD_SIZE
and the job's run), log at once in the three ways a team trains: (a) every rank into the job's
run, (b) each rank into its own child of the job, (c) each node its own run of one experiment (a
sweep). To keep the suite short, each node plays the three parts in one process (three runs,
points interleaved). Every point arrives exactly once in `get_metrics_frame()` and in MLflow's
native history, also when the server is stopped and restarted while the nodes log (what they
logged meanwhile arrives with `runbridge sync`). A team's history moves in with one `runbridge
migrate` per source machine, all at once, without duplicates.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migration_fixtures import assert_snapshots_equal, make_reference, record_counts, snapshot, spec_for
from mlflow_fixtures import FAST_HTTP_ENV, FAST_PROBE_INTERVAL, MlflowServer
from rank_helpers import native_history, start_ranks, wait_ranks
from runbridge import Experiment, Run, Workspace

#: 8 nodes; points per node and run kept small enough for the suite
#: (tests/benchmarks/bench_scale_out.py logs 10,000 per node and times it).
RANKS, POINTS = 8, 1000
JOB, SWEEP = "scale-job", "scale-sweep"

NODE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from runbridge import Experiment, Run, Workspace

    points, barrier = int(sys.argv[1]), sys.argv[2]
    rank = os.environ["RANK"]

    def phase(name):
        # tell the test this rank reached `name`, and wait until the test says go on
        if barrier == "-":
            return
        Path(barrier, f"{name}.{rank}").touch()
        while not Path(barrier, f"go-{name}").exists():
            time.sleep(0.05)

    job = Run.get_context()                              # (a) the job's run, shared by every rank
    child = job.child_run(name=f"rank{rank}")            # (b) this rank's child of it
    trial = Experiment(Workspace.from_config(), "%(sweep)s").start_logging(
        display_name=f"trial{rank}", outputs=None)       # (c) this node's run of a sweep
    runs = (job, child, trial)
    for i in range(points):
        if i == points // 2:
            for run in runs:
                run.flush()
            phase("half")       # the test stops the server here
        if i == 3 * points // 4:
            for run in runs:
                run.flush()     # fails: the server is down; kept in the spool
            phase("down")       # the test starts the server again here
        for run in runs:
            run.log("loss", 1.0 / (i + 1), step=i)
    child.complete()
    trial.complete()
    job.flush()                 # the job's run is the launcher's to end
""" % {"sweep": SWEEP})


def start_nodes(tmp_path: Path, spec: str, barrier: Path | None = None) -> tuple[Run, list[subprocess.Popen]]:
    """Start the job's run and RANKS nodes logging POINTS per run into it (see NODE)."""
    script = tmp_path / "node.py"
    script.write_text(NODE)
    job = Experiment(Workspace(backends=[spec]), JOB).start_logging(outputs=None)
    # only what a launcher gives a node, plus this test's spool folder and short MLflow timeouts
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **job.process_environment(),
           "RUNBRIDGE_SPOOL": os.environ["RUNBRIDGE_SPOOL"],
           "RUNBRIDGE_MLFLOW_PROBE_INTERVAL": FAST_PROBE_INTERVAL, **FAST_HTTP_ENV}
    args = [str(POINTS), str(barrier) if barrier else "-"]
    return job, start_ranks(script, RANKS, env, args, cwd=tmp_path)


def logged_runs(spec: str, job: Run) -> dict[str, list[Run]]:
    """The runs the nodes logged into, per part, read through a fresh workspace."""
    workspace = Workspace(backends=[spec])
    shared = Run(Experiment(workspace, JOB), job.id)
    return {"one run": [shared], "children": shared.get_children(),
            "sweep": list(Experiment(workspace, SWEEP).get_runs())}


def assert_every_point_once(spec: str, uri: str, job: Run) -> None:
    """Each node's steps 0..POINTS-1 exactly once, with their values, in every run it logged
    into: in runbridge's read and in MLflow's native history."""
    for part, runs in logged_runs(spec, job).items():
        assert len(runs) == (1 if part == "one run" else RANKS), (part, [r.id for r in runs])
        per_run = RANKS if part == "one run" else 1
        writers = set()
        for run in runs:
            losses = run.get_metrics_frame("loss")
            assert len(losses) == per_run * POINTS, (part, run.id, len(losses))
            for writer, points in losses.groupby("writer"):
                assert sorted(points["step"]) == list(range(POINTS)), (part, run.id, writer)
                assert all(value == 1.0 / (step + 1) for step, value in zip(points["step"], points["value"]))
            writers |= set(losses["writer"])
            history = native_history(uri, run.experiment.name, run.id)
            assert len(history) == per_run * POINTS, (part, run.id, len(history))
            assert sorted(m.step for m in history) == sorted(list(range(POINTS)) * per_run), (part, run.id)
        assert len(writers) == RANKS, part  # one writer per node, none shared


@pytest.mark.slow
def test_eight_nodes_log_every_point_exactly_once(tmp_path, mlflow_postgres_server, fast_mlflow_http):
    spec = f"mlflow:{mlflow_postgres_server.url}"
    job, nodes = start_nodes(tmp_path, spec)
    wait_ranks(nodes)
    job.complete()
    assert_every_point_once(spec, mlflow_postgres_server.url, job)
    assert job.get_status() == "Completed"


def _wait_for(barrier: Path, name: str, nodes: list[subprocess.Popen]) -> None:
    """Wait until every node reached phase `name` (a node that died fails the test at once)."""
    deadline = time.monotonic() + 300
    while len(list(barrier.glob(f"{name}.*"))) < RANKS:
        assert time.monotonic() < deadline, f"the nodes did not all reach {name!r} in 300 s"
        for node in nodes:
            if node.poll() is not None and node.returncode != 0:
                raise AssertionError(node.stderr.read().decode(errors="replace"))
        time.sleep(0.05)


@pytest.mark.slow
def test_nodes_logging_across_a_server_restart_lose_nothing_after_sync(tmp_path, postgres, fast_mlflow_http, monkeypatch):
    monkeypatch.setenv("RUNBRIDGE_MLFLOW_PROBE_INTERVAL", FAST_PROBE_INTERVAL)
    # a server of this test's own (stopped half way), on a database of the session's PostgreSQL
    server = MlflowServer(tmp_path / "server", backend_store_uri=postgres.new_database("restart"))
    server.start()
    try:
        spec = f"mlflow:{server.url}"
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        job, nodes = start_nodes(tmp_path, spec, barrier)
        try:
            _wait_for(barrier, "half", nodes)
            server.stop()
            (barrier / "go-half").touch()
            _wait_for(barrier, "down", nodes)
            server.start()  # same port, same database: the nodes carry on against it
            (barrier / "go-down").touch()
        finally:
            wait_ranks(nodes)
        job.complete()  # the launcher's process never failed: it ends the job's run on the server

        env = {**os.environ, "RUNBRIDGE_BACKENDS": spec}
        runbridge = Path(sys.executable).with_name("runbridge")
        synced = subprocess.run([str(runbridge), "sync", "--no-progress"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        # the job's run, 8 children, 8 sweep runs
        assert synced.stdout.startswith(f"Repaired {1 + 2 * RANKS} run(s)"), synced.stdout
        assert_every_point_once(spec, server.url, job)
        for runs in logged_runs(spec, job).values():
            assert [run.get_status() for run in runs] == ["Completed"] * len(runs)
        again = subprocess.run([str(runbridge), "sync", "--no-progress"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
        assert again.stdout.startswith("Nothing to sync"), again.stdout + again.stderr  # nothing doubled
    finally:
        server.stop()


# --- moving a team's history in: one migration per source machine, all at once ---------------------
@pytest.mark.slow
def test_migrations_from_several_machines_at_once_copy_everything_once(tmp_path, mlflow_postgres_server, fast_mlflow_http):
    dst = f"mlflow:{mlflow_postgres_server.url}"
    experiment = "team-history"
    # three machines' stores, one experiment: two built-in SQLite stores and a TensorBoard folder
    sources = [spec_for(kind, tmp_path / f"machine-{i}") for i, kind in enumerate(("sqlite", "sqlite", "tensorboard"))]
    expected: dict = {}
    for source in sources:
        make_reference(source, tmp_path, experiment)
        expected.update(snapshot(source, tmp_path, experiment))
    assert len(expected) == 9

    def migrate_all_at_once() -> list[str]:
        runbridge = Path(sys.executable).with_name("runbridge")
        procs = [subprocess.Popen([str(runbridge), "migrate", source, dst, "--experiment", experiment, "--no-progress"],
                                  cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for source in sources]
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, out + err
            outputs.append(out)
        return outputs

    first = migrate_all_at_once()
    assert all("copied:  3 run(s)" in out for out in first), first
    got = snapshot(dst, tmp_path, experiment)
    assert_snapshots_equal(dict(sorted(got.items())), dict(sorted(expected.items())))
    counts = record_counts(dst, experiment)

    again = migrate_all_at_once()  # every machine runs its migration again: nothing is written twice
    assert all("skipped: 3 run(s) already present" in out for out in again), again
    assert record_counts(dst, experiment) == counts

"""Several backends at once: every record reaches every healthy backend; a backend that fails
mid-run is warned about once, marked incomplete on the run, and repaired by `runbridge sync`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from mlflow_fixtures import FAST_HTTP_ENV, MlflowServer, free_port
from runbridge import BackendFailedWarning, Experiment, Run, Workspace
from runbridge.fanout import INCOMPLETE_PREFIX
from runbridge.sync import sync
from runbridge.shapes import fold_tags

SCRIPT = textwrap.dedent("""
    import sys, time, pathlib
    from runbridge import Experiment, Workspace

    ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    run = Experiment(Workspace.from_config(), "fan").start_logging(display_name="fan-out", outputs=None)
    for i in range(100):
        run.log("loss", 1.0 / (i + 1), step=i)
    run.log_row("table", a=1, b="x")
    run.flush()
    ready.write_text(run.id)
    while not go.exists():  # the test stops the MLflow server now
        time.sleep(0.05)
    for i in range(100, 300):
        run.log("loss", 1.0 / (i + 1), step=i)
        if i % 50 == 0:
            run.flush()
    run.log_row("table", a=2, b="y")
    run.tag("after", "the server stopped")
    run.complete()
    print("script done")
""")


def cli(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("runbridge")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "runbridge"]
    return subprocess.run(command + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def expected_loss() -> list[float]:
    return [1.0 / (i + 1) for i in range(300)]


@pytest.mark.slow
def test_a_server_stopped_mid_run_loses_nothing_elsewhere_and_sync_repairs_it(tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    sqlite_spec = f"sqlite:{tmp_path / 'runs.db'}"
    tb_spec = f"tensorboard:{tmp_path / 'tb'}"
    mlflow_spec = f"mlflow:{server.url}"
    specs = ",".join([sqlite_spec, mlflow_spec, tb_spec])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBRIDGE_")}
    env.update(FAST_HTTP_ENV, RUNBRIDGE_BACKENDS=specs, PYTHONWARNINGS="default")
    ready, go = tmp_path / "ready", tmp_path / "go"
    (tmp_path / "script.py").write_text(SCRIPT)
    try:
        proc = subprocess.Popen([sys.executable, "script.py", str(ready), str(go)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300  # a safety limit against a hang, not a timing check
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not ready.exists():
            proc.kill()
            pytest.fail(f"the script did not get ready: {proc.communicate(timeout=60)}")
        run_id = ready.read_text()
        server.stop()
        go.write_text("go")
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "script done" in out
        assert err.count("BackendFailedWarning") == 1, err
        warning = next(line for line in err.splitlines() if "BackendFailedWarning" in line)
        assert mlflow_spec in warning

        # the healthy backends hold every point, and the run says MLflow is incomplete
        for spec in (sqlite_spec, tb_spec):
            run = Run(Experiment(Workspace(backends=[spec]), "fan"), run_id)
            metrics = run.get_metrics()
            assert metrics["loss"] == expected_loss(), spec
            assert metrics["table"] == {"a": [1, 2], "b": ["x", "y"]}
            assert run.get_tags() == {"after": "the server stopped"}
            assert run.get_status() == "Completed"
        shown = cli("show", run_id, cwd=tmp_path, env=env)
        assert shown.returncode == 0, shown.stderr
        mlflow_line = next(line for line in shown.stdout.splitlines() if line.strip().startswith(mlflow_spec))
        assert "INCOMPLETE" in mlflow_line and "runbridge sync" in mlflow_line
        assert f"{sqlite_spec}: complete" in shown.stdout and f"{tb_spec}: complete" in shown.stdout

        # the server comes back on the same address; sync gives MLflow what it missed
        restarted = MlflowServer(tmp_path / "server")
        restarted.port, restarted.url = server.port, server.url
        server = restarted.start()
        synced = cli("sync", "--no-progress", cwd=tmp_path, env=env)
        assert synced.returncode == 0, synced.stderr
        assert "Repaired 1 run(s)" in synced.stdout and "not held exactly" not in synced.stdout
        env_one = {**env, "RUNBRIDGE_BACKENDS": mlflow_spec}
        in_mlflow = Run(Experiment(Workspace(backends=[mlflow_spec]), "fan"), run_id)
        assert in_mlflow.get_metrics()["loss"] == expected_loss()
        assert in_mlflow.get_metrics()["table"] == {"a": [1, 2], "b": ["x", "y"]}
        assert in_mlflow.get_tags() == {"after": "the server stopped"}
        assert in_mlflow.get_status() == "Completed"
        from mlflow import MlflowClient

        client = MlflowClient(server.url)
        (native,) = client.search_runs([client.get_experiment_by_name("fan").experiment_id])
        assert [m.value for m in client.get_metric_history(native.info.run_id, "loss")] == expected_loss()
        again = cli("show", run_id, cwd=tmp_path, env=env)
        assert "INCOMPLETE" not in again.stdout and f"{mlflow_spec}: complete" in again.stdout
        assert cli("sync", cwd=tmp_path, env=env).stdout.startswith("Nothing to sync")
        assert cli("runs", cwd=tmp_path, env=env_one).returncode == 0
    finally:
        server.stop()


def test_a_failing_backend_is_marked_on_the_run_in_the_others(tmp_path):
    """In-process: the fan-out records the failure as a reserved tag; users do not see it."""
    good = f"sqlite:{tmp_path / 'good.db'}"
    bad_folder = tmp_path / "bad"
    bad = f"sqlite:{bad_folder / 'bad.db'}"
    ws = Workspace(backends=[good, bad])
    run = Experiment(ws, "fan").start_logging(outputs=None)
    run.log("x", 1)
    run.flush()
    ws.backends[1].impl._conn.close()  # the second store stops working mid-run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(2, 5):
            run.log("x", i)
            run.flush()
        run.complete()
    assert [type(w.message) for w in caught] == [BackendFailedWarning]
    reread = Run(Experiment(Workspace(backends=[good]), "fan"), run.id)
    assert reread.get_metrics() == {"x": [1, 2, 3, 4]}
    assert reread.get_tags() == {}
    _, records = Workspace(backends=[good]).read_run("fan", run.id)
    marks = {k: v for k, v in fold_tags(records, include_reserved=True).items() if k.startswith(INCOMPLETE_PREFIX)}
    assert list(marks) == [INCOMPLETE_PREFIX + "sqlite2"]
    assert marks[INCOMPLETE_PREFIX + "sqlite2"].startswith(bad)

    report = sync([good, bad], progress=False)  # a fresh instance of the store works again
    assert report.ok and len(report.repaired) == 1 and report.differences == [], report.summary()
    repaired = Run(Experiment(Workspace(backends=[bad]), "fan"), run.id)
    assert repaired.get_metrics() == {"x": [1, 2, 3, 4]} and repaired.get_status() == "Completed"
    _, records = Workspace(backends=[good]).read_run("fan", run.id)
    assert not any(k.startswith(INCOMPLETE_PREFIX) for k in fold_tags(records, include_reserved=True))
    assert sync([good, bad], progress=False).repaired == []
    assert list(Path(os.environ["RUNBRIDGE_SPOOL"]).glob("*/*.jsonl")) == []  # repaired: spool dropped


def test_the_fan_out_example_runs(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "fan_out.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBRIDGE_")}
    result = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "loss" in line and "points" in line]
    assert len(lines) == 3 and all("50 points" in line for line in lines), result.stdout


def test_a_lone_backend_that_fails_is_replayed_from_the_local_spool(tmp_path):
    """With one backend there is no healthy copy: the handle spools what it missed; sync replays it."""
    spec = f"sqlite:{tmp_path / 'only.db'}"
    ws = Workspace(backends=[spec])
    run = Experiment(ws, "lone").start_logging(outputs=None)
    run.log_list("x", [0, 1])
    run.log_row("t", a=1)
    run.flush()
    ws.backends[0].impl._conn.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log_list("x", [2, 3, 4])
        run.log_row("t", a=2)
        run.tag("k", "v")
        run.upload_file("f.txt", io.BytesIO(b"spooled bytes"))
        run.complete()
    assert [type(w.message) for w in caught] == [BackendFailedWarning]
    spooled = list(Path(os.environ["RUNBRIDGE_SPOOL"]).glob("*/*.jsonl"))
    assert len(spooled) == 1

    shown = cli("show", run.id, "--backend", spec, cwd=tmp_path, env={**os.environ})
    assert "INCOMPLETE" in shown.stdout and "local spool" in shown.stdout

    report = sync([spec], progress=False)
    assert report.ok and report.repaired == [(run.id, spec, "replayed from the local spool")], report.summary()
    again = Run(Experiment(Workspace(backends=[spec]), "lone"), run.id)
    assert again.get_metrics() == {"x": [0, 1, 2, 3, 4], "t": {"a": [1, 2]}}
    assert again.get_tags() == {"k": "v"} and again.get_status() == "Completed"
    assert Path(again.download_file("f.txt", tmp_path / "f.txt")).read_bytes() == b"spooled bytes"
    assert not spooled[0].exists()
    assert sync([spec], progress=False).repaired == []


def test_reads_skip_a_backend_whose_server_is_down(tmp_path, fast_mlflow_http):
    """The first backend's server is down: the next backend that holds the run answers reads, and
    with no other backend the error names the server."""
    from runbridge import RunbridgeError

    sqlite_spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[sqlite_spec]), "down").start_logging(outputs=None)
    run.log("loss", 0.5)
    run.log("loss", 0.25)
    run.complete()
    dead = f"mlflow:http://127.0.0.1:{free_port()}"
    workspace = Workspace(backends=[dead, sqlite_spec])
    assert workspace.find_run(run.id).experiment == "down"
    again = Run(Experiment(workspace, "down"), run.id)
    assert again.get_metrics() == {"loss": [0.5, 0.25]}
    assert again.get_status() == "Completed"
    with pytest.raises(RunbridgeError, match="unreachable"):
        Run(Experiment(Workspace(backends=[dead]), "down"), run.id)


def test_a_run_no_backend_accepts_does_not_start_and_the_cli_says_so_in_one_line(tmp_path, fast_mlflow_http):
    """The only backend is a server nobody runs: the run fails at start with one clear error (no
    run half-exists, nothing is spooled), and `runbridge run` prints one `Error:` line, exit 1."""
    from runbridge import RunbridgeError

    dead = f"mlflow:http://127.0.0.1:{free_port()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RunbridgeError, match="could not start: no backend accepted it") as raised:
            Experiment(Workspace(backends=[dead]), "nowhere").start_logging(outputs=None)
    assert dead in str(raised.value)
    assert [str(w.message) for w in caught if issubclass(w.category, BackendFailedWarning)] == []
    assert list(Path(os.environ["RUNBRIDGE_SPOOL"]).glob("*/*.jsonl")) == []

    script = tmp_path / "train.py"
    script.write_text("from azureml.core import Run\nRun.get_context().log('loss', 0.5)\n")
    result = cli("run", "--backend", dead, str(script), cwd=tmp_path, env={**os.environ})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr  # one line, no warning
    assert result.stderr.startswith("Error: ") and "no backend accepted it" in result.stderr, result.stderr

    beside = cli("run", "--backend", dead, "-b", f"sqlite:{tmp_path / 'runs.db'}", str(script), cwd=tmp_path,
                 env={**os.environ})
    assert beside.returncode == 0, beside.stderr  # the dead server cannot fail the run's link either
    assert "Traceback" not in beside.stderr and "the other backends carry on" in beside.stderr, beside.stderr
    assert "view it: sqlite:" in beside.stderr, beside.stderr

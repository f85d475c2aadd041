"""What survives what: a blocked or dead backend, Ctrl-C, SIGTERM, a full disk; real processes,
real signals, a real `mlflow server` killed mid-run, a real file-size limit."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runbridge import Experiment, Run, Workspace
from runbridge.records import Metric
from runbridge import spool

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
import runbridge_gate  # noqa: E402


def write_script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "train_script.py"
    script.write_text(textwrap.dedent(body))
    return script


def start(tmp_path: Path, body: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(write_script(tmp_path, body))], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the script ended early:\n{process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path.name} did not appear within {timeout:.0f} s:\n{process.communicate()[1]}")
        time.sleep(0.02)


def finish(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Wait for the script; kill it if it overruns `timeout` (then the test fails)."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the script did not finish within {timeout:.0f} s:\n{err[-3000:]}") from None


def only_run(tmp_path: Path, experiment: str, db: str = ".runbridge/runs.db") -> Run:
    [run] = list(Experiment(Workspace(backends=[f"sqlite:{tmp_path / db}"]), experiment).get_runs())
    return run


def stored(run: Run, name: str = "x") -> list:
    values = run.get_metrics().get(name, [])
    return values if isinstance(values, list) else [values]


def test_run_log_returns_while_a_backend_blocks_every_write(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "closed").touch()
    env = runbridge_gate.install(tmp_path / "site")
    process = start(tmp_path, f"""
        from runbridge import Workspace, Experiment
        ws = Workspace(backends=["sqlite:runs.db", "gate:{gate}"])
        run = Experiment(ws, "blocked").start_logging(outputs=None)
        for i in range(35_000):  # three and a half batches: the old buffer wrote each on this thread
            run.log("x", i)
        open("logged", "w").close()
        run.complete()
    """, env)
    # Every run.log call returned while the gate backend could not write anything.
    wait_for(tmp_path / "logged", process)
    (gate / "closed").unlink()
    out, err = finish(process, 120)
    assert process.returncode == 0, err
    assert stored(only_run(tmp_path, "blocked", "runs.db")) == list(range(35_000))
    writes = [json.loads(line) for line in (gate / "writes.jsonl").read_text().splitlines()]
    assert sum(w["records"] for w in writes if w["records"]) >= 35_000
    assert {w["thread"] for w in writes} == {"runbridge-writer"}  # never the script's thread


CTRL_C_SCRIPT = """
    import faulthandler
    faulthandler.dump_traceback_later(60, exit=True)  # a hang shows every thread's stack
    from runbridge import Workspace, Experiment
    run = Experiment(Workspace.from_config(), "ctrlc").start_logging(outputs=None)
    n = 0
    open("started", "w").close()
    try:
        while True:
            run.log("x", n)
            n += 1
            if n % 2000 == 0:
                run.flush()  # most of the time is spent in a flush: the interrupt lands in one
    finally:
        open("count", "w").write(str(n))
"""


@pytest.mark.parametrize("trial", range(4))
def test_ctrl_c_inside_a_flush_keeps_every_point_logged_before_it(tmp_path, trial):
    process = start(tmp_path, CTRL_C_SCRIPT)
    wait_for(tmp_path / "started", process)
    time.sleep(1.0 + 0.3 * trial)
    process.send_signal(signal.SIGINT)
    out, err = finish(process, 120)
    assert "KeyboardInterrupt" in err
    n = int((tmp_path / "count").read_text())
    run = only_run(tmp_path, "ctrlc")
    values = stored(run)
    assert n > 2000
    # The call the interrupt cut short may or may not have been stored; nothing before it is lost.
    assert len(values) in (n, n + 1), f"{n} points logged, {len(values)} stored"
    assert values == list(range(len(values)))
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "KeyboardInterrupt" in details["error"]["error"]["message"]


def test_sigterm_flushes_marks_the_run_failed_and_the_process_dies_of_sigterm(tmp_path):
    process = start(tmp_path, """
        import os
        from runbridge import Run
        run = Run.get_context()  # promises to end the run at exit
        n = 0
        while True:
            run.log("x", n)
            n += 1
            if n % 5000 == 0:
                os.replace(open("p.tmp", "w").write(str(n)) and "p.tmp", "progress")
    """)
    wait_for(tmp_path / "progress", process)
    time.sleep(0.5)
    reached = int((tmp_path / "progress").read_text())
    process.send_signal(signal.SIGTERM)
    out, err = finish(process, 120)
    assert process.returncode == -signal.SIGTERM, err  # the exit status still says SIGTERM
    run = only_run(tmp_path, "train_script")
    values = stored(run)
    assert len(values) >= reached
    assert values == list(range(len(values)))  # everything logged before the signal, in order
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "killed by SIGTERM" in details["error"]["error"]["message"]


def test_a_script_that_handles_sigterm_itself_keeps_its_handler(tmp_path):
    process = start(tmp_path, """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
        from runbridge import Run
        run = Run.get_context()
        run.log("x", 1)
        open("started", "w").close()
        time.sleep(60)
    """)
    wait_for(tmp_path / "started", process)
    process.send_signal(signal.SIGTERM)
    finish(process, 120)
    assert process.returncode == 3
    run = only_run(tmp_path, "train_script")
    assert stored(run) == [1]


def test_a_spool_that_cannot_keep_records_on_a_full_disk_says_so(tmp_path):
    limit = 3 * 1024 * 1024
    process = start(tmp_path, f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process at the limit
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from runbridge import Workspace, Experiment
        run = Experiment(Workspace(backends=["sqlite:runs.db"]), "full").start_logging(outputs=None)
        for i in range(300_000):
            run.log("x", i * 0.5)
        run.complete()
    """)
    out, err = finish(process, 300)
    assert process.returncode == 0, err
    assert "BackendFailedWarning" in err  # the store hit the limit
    assert "SpoolFailedWarning" in err and "could not keep them" in err  # and so did the spool
    [(path, header)] = list(spool.pending(tmp_path / "spool"))
    assert spool.lost_marker(path).exists()
    calls, incomplete = spool.load(path)
    assert incomplete  # so `runbridge sync` cannot report the run repaired from this spool
    # once there is room again, sync replays what the spool kept, then says what is missing
    synced = subprocess.run([sys.executable, "-m", "runbridge", "sync", "--no-progress", "-b", "sqlite:runs.db"],
                            cwd=tmp_path, env={**os.environ, "RUNBRIDGE_SPOOL": str(tmp_path / "spool")},
                            capture_output=True, text=True, timeout=300)
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert "Repaired" not in synced.stdout and synced.stdout.count("NOT repaired") == 1, synced.stdout
    assert path.exists()  # the spool stays for a later look


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["dies", "hangs"])
def test_a_tracking_server_that_dies_or_hangs_mid_run_never_stalls_the_script(tmp_path, how):
    from mlflow_fixtures import MlflowServer

    server = MlflowServer(tmp_path / "server").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST_")}  # runbridge's bounds
    try:
        process = start(tmp_path, f"""
            import os, time
            from runbridge import Workspace, Experiment
            ws = Workspace(backends=["sqlite:runs.db", "mlflow:{server.url}"])
            run = Experiment(ws, "dying").start_logging(outputs=None)
            n, longest = 0, 0.0
            while not os.path.exists("stop"):
                t = time.perf_counter()
                run.log("x", n)
                longest = max(longest, time.perf_counter() - t)
                n += 1
                if n == 2000:
                    run.flush()  # the server holds the start of the run
                    open("started", "w").close()
                if n % 2 == 0:
                    time.sleep(0.001)  # a training loop: about a thousand points a second
            open("result", "w").write(f"{{n}} {{longest}}")
            run.complete()
        """, env)
        wait_for(tmp_path / "started", process)
        os.killpg(server.process.pid, how)  # refused connections, or open ones nobody answers
        time.sleep(5)  # the script keeps logging while runbridge finds out
        (tmp_path / "stop").touch()
        out, err = finish(process, 240)  # MLflow's own retries took minutes here
    finally:
        try:
            os.killpg(server.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.process.wait(timeout=60)
    assert process.returncode == 0, err
    assert "BackendFailedWarning" in err and server.url in err
    n, longest = (tmp_path / "result").read_text().split()
    print(f"points {n}, longest run.log call {float(longest) * 1000:.1f} ms")
    run = only_run(tmp_path, "dying", "runs.db")
    assert stored(run) == list(range(int(n)))
    assert run.get_status() == "Completed"
    [(path, header)] = list(spool.pending(tmp_path / "spool"))  # what the server missed, for sync
    assert header["spec"] == f"mlflow:{server.url}"
    calls, incomplete = spool.load(path)
    assert not incomplete and any(op == "end_run" for op, _, _ in calls)


def test_a_run_whose_process_was_killed_is_shown_failed_once_its_heartbeat_is_stale(tmp_path, monkeypatch):
    process = start(tmp_path, """
        import time
        from runbridge import Run
        run = Run.get_context()
        for i in range(1000):
            run.log("x", i)
        run.flush()
        open("started", "w").close()
        time.sleep(120)
    """)
    wait_for(tmp_path / "started", process)
    run = only_run(tmp_path, "train_script")
    assert run.get_status() == "Running"  # alive: its heartbeat is fresh
    process.kill()  # SIGKILL: no handler, no exit flush
    finish(process, 60)
    monkeypatch.setenv("RUNBRIDGE_STALE_AFTER", "1")
    time.sleep(2.5)
    run = only_run(tmp_path, "train_script")
    assert run.get_status() == "Failed"
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "stopped without ending it (killed?)" in details["error"]["error"]["message"]
    assert stored(run) == list(range(1000))  # what it wrote before is kept
    env = {**os.environ, "RUNBRIDGE_STALE_AFTER": "1"}
    for args in (["runs"], ["show", run.id]):  # the command line shows it too, and writes nothing
        shown = subprocess.run([sys.executable, "-m", "runbridge", *args], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0 and "Killed?" in shown.stdout, shown.stdout + shown.stderr
    assert run.get_status() == "Failed"


def test_a_spool_past_its_bound_warns_and_marks_the_run_in_the_healthy_backends(tmp_path, monkeypatch):
    from runbridge.errors import SpoolFailedWarning
    from runbridge.shapes import fold_tags

    monkeypatch.setattr(spool, "MAX_SPOOL_BYTES", 20_000)
    (tmp_path / "not-a-folder").write_text("a file where the jsonl backend wants its folder")
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec, f"jsonl:{tmp_path / 'not-a-folder'}"]), "bound").start_logging(
        outputs=None)
    with pytest.warns(SpoolFailedWarning, match="could not keep them"):
        for i in range(2000):
            run.log("x", i)
        run.complete()
    _, records = Workspace(backends=[spec]).read_run("bound", run.id)
    tags = fold_tags(records, include_reserved=True)
    assert "the local spool lost records" in tags["runbridge.spool_lost.jsonl"]
    assert [r.value for r in records if type(r) is Metric] == list(range(2000))  # the healthy one has all
    [(path, _)] = list(spool.pending(tmp_path / "spool"))
    assert spool.load(path)[1]  # incomplete

"""Buffering, exit handling and get_context outside a submitted run, in real processes."""

import subprocess
import sys
import textwrap
import time

import pytest

from runbridge import Experiment, Run, Workspace
from runbridge.buffer import MAX_PENDING
from runbridge.records import Metric


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train_script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)


def only_run(tmp_path, experiment: str) -> Run:
    exp = Experiment(Workspace(backends=[f"sqlite:{tmp_path / '.runbridge' / 'runs.db'}"]), experiment)
    [run] = list(exp.get_runs())
    return run


def test_a_process_that_exits_without_ending_its_run_marks_it_failed(tmp_path):
    result = run_script(tmp_path, """
        from runbridge import Workspace, Experiment
        run = Experiment(Workspace.from_config(), "forgot").start_logging()
        for i in range(5):
            run.log("loss", i / 10)
    """)
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path, "forgot")
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "exited without ending the run" in details["error"]["error"]["message"]
    assert run.get_metrics() == {"loss": [0.0, 0.1, 0.2, 0.3, 0.4]}  # buffered points were flushed at exit


def test_get_context_in_a_standalone_script_records_and_completes(tmp_path):
    result = run_script(tmp_path, """
        from runbridge import Run
        run = Run.get_context()
        assert Run.get_context() is run  # one object per process
        run.log("alpha", 0.5)
        run.log_list("mse", [3, 2.5])
    """)
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path, "train_script")  # the experiment is named after the script
    assert run.get_status() == "Completed"
    assert run.get_metrics() == {"alpha": 0.5, "mse": [3.0, 2.5]}


def test_get_context_script_that_raises_ends_failed(tmp_path):
    result = run_script(tmp_path, """
        from runbridge import Run
        run = Run.get_context()
        run.log("x", 1)
        raise RuntimeError("diverged at epoch 3")
    """)
    assert result.returncode == 1
    details = only_run(tmp_path, "train_script").get_details()
    assert details["status"] == "Failed"
    assert "diverged at epoch 3" in details["error"]["error"]["message"]


def test_get_context_without_offline_raises_outside_a_submitted_run():
    from runbridge.errors import RunbridgeError
    with pytest.raises(RunbridgeError, match="allow_offline=False.*outside a submitted run"):
        Run.get_context(allow_offline=False)


def test_with_block_completes_on_system_exit_zero(tmp_path):
    result = run_script(tmp_path, """
        import sys
        from runbridge import Workspace, Experiment
        with Experiment(Workspace.from_config(), "exit0").start_logging() as run:
            run.log("x", 1)
            sys.exit(0)
    """)
    assert result.returncode == 0, result.stderr
    assert only_run(tmp_path, "exit0").get_status() == "Completed"


def test_buffered_points_reach_another_reader_without_an_explicit_flush(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "live").start_logging(outputs=None)
    run.log("loss", 0.5)
    reader = Experiment(Workspace(backends=[spec]), "live")
    deadline = time.monotonic() + 10  # the flusher writes within FLUSH_INTERVAL; allow a loaded machine slack
    seen = []
    while time.monotonic() < deadline and not seen:
        seen = [r.value for r in reader.workspace.read_run("live", run.id)[1] if type(r) is Metric]
        time.sleep(0.05)
    assert seen == [0.5]
    run.complete()


def test_a_full_buffer_is_handed_to_the_writer_without_waiting_for_the_interval(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "size").start_logging(outputs=None)
    for i in range(MAX_PENDING):
        run.log("x", i)
    # The call that filled the buffer woke the writer thread: another reader sees every point
    # without a flush from this thread.
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline and len(seen) < MAX_PENDING:
        seen = [r.value for r in Workspace(backends=[spec]).read_run("size", run.id)[1] if type(r) is Metric]
        time.sleep(0.02)
    assert seen == list(range(MAX_PENDING))
    run.complete()


def test_a_run_opened_again_by_id_reads_what_was_logged_a_moment_before(tmp_path):
    """`Run(experiment, run.id)` in the process that logs the run sees every point logged so far,
    not only what the writer thread happened to write (it writes every half second)."""
    workspace = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"])
    run = Experiment(workspace, "again").start_logging(outputs=None)
    for attempt in range(20):
        run.log("loss", attempt)
        run.tag("last", str(attempt))
        again = Run(run.experiment, run.id)
        assert again.get_metrics("loss")["loss"] == (list(range(attempt + 1)) if attempt else 0)
        assert again.get_tags()["last"] == str(attempt)
    run.complete()

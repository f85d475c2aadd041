"""Script runs, end to end: ScriptRunConfig + submit + wait_for_completion, `runbridge run`,
Run.get_context in submitted, standalone and worker processes. Real subprocesses and real
stores, each under the test's tmp_path; what is asserted is what a user reads back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from mlflow_fixtures import fresh_mlflow_db
from runbridge import Experiment, Run, RunFailedError, ScriptRunConfig, Workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALPHAS = [i * 0.05 for i in range(20)]  # np.arange(0.0, 1.0, 0.05), as floats
TIMEOUT = 300  # seconds: a safety limit for every child process, so a hang fails instead of blocking


def _np_alphas() -> list[float]:
    import numpy as np
    return [float(a) for a in np.arange(0.0, 1.0, 0.05)]


def _until(predicate, what: str, limit: float = 120.0):
    """Poll `predicate` until it is truthy (a safety limit only guards against a hang)."""
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _read_file(run: Run, name: str, tmp: Path) -> str:
    target = tmp / "downloads" / name.replace("/", "_")
    run.download_file(name, target)
    return target.read_text(encoding="utf-8")


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sweep(here) -> Path:
    """A copy of examples/train-on-local (train.py + mylib.py) to submit."""
    import sklearn  # noqa: F401  (installed by CI: fail, never skip)
    import joblib  # noqa: F401  (installed by CI: fail, never skip)
    target = here / "train-on-local"
    shutil.copytree(EXAMPLES / "train-on-local", target, ignore=shutil.ignore_patterns("outputs", "__pycache__"))
    return target


def _check_sweep(run: Run, tmp: Path) -> None:
    assert run.get_status() == "Completed"
    metrics = run.get_metrics()
    assert metrics["alpha"] == _np_alphas()
    assert len(metrics["mse"]) == 20 and all(isinstance(m, float) and m > 0 for m in metrics["mse"])
    names = run.get_file_names()
    models = [n for n in names if n.endswith(".pkl")]
    assert models == sorted(f"outputs/ridge_{a:.2f}.pkl" for a in ALPHAS)
    assert "user_logs/std_log.txt" in names
    log = _read_file(run, "user_logs/std_log.txt", tmp)
    for alpha, mse in zip(metrics["alpha"], metrics["mse"]):
        assert f"alpha is {alpha:.2f}, and mse is {mse:0.2f}" in log


# -- the train-on-local sweep ---------------------------------------------------------------------
def test_sweep_through_submit_completes_with_metrics_models_and_log(sweep, here, capsys):
    ws = Workspace.from_config()
    exp = Experiment(ws, "train-on-local")
    run = exp.submit(ScriptRunConfig(source_directory=str(sweep), script="train.py"), tags={"sweep": "ridge"})
    assert run.get_status() in ("Running", "Completed")  # submit returns at once

    details = run.wait_for_completion(show_output=True)

    shown = capsys.readouterr().out
    assert "alpha is 0.40, and mse is 3295.71" in shown  # streamed
    assert f"RunId: {run.id}" in shown and "Status: Completed" in shown
    assert details["status"] == "Completed" and details["tags"] == {"sweep": "ridge"}
    assert details["logFiles"] == {"user_logs/std_log.txt": f"runbridge://{run.id}/user_logs/std_log.txt"}
    _check_sweep(run, here)
    # Another process (a fresh workspace object) reads the same run.
    again = Run(Experiment(Workspace.from_config(), "train-on-local"), run.id)
    assert again.get_metrics() == run.get_metrics() and again.get_status() == "Completed"
    # The snapshot holds the source folder, not what the run wrote.
    snapshot = zipfile.ZipFile(run.restore_snapshot(path=here))
    assert sorted(snapshot.namelist()) == ["mylib.py", "submit.py", "train.py"]


def test_the_examples_run_as_written(sweep, here):
    submitted = subprocess.run([sys.executable, str(sweep / "submit.py")], capture_output=True, text=True, timeout=TIMEOUT)
    assert submitted.returncode == 0, submitted.stderr
    assert "Status: Completed" in submitted.stdout and "best alpha 0.40 with mse 3295.71" in submitted.stdout
    assert "20 models" in submitted.stdout
    notebook = subprocess.run([sys.executable, str(EXAMPLES / "train-within-notebook.py")],
                              capture_output=True, text=True, timeout=TIMEOUT)
    assert notebook.returncode == 0, notebook.stderr
    (run,) = Experiment(Workspace.from_config(), "train-within-notebook").get_runs()
    assert run.get_status() == "Completed"
    assert run.get_metrics()["alpha"] == 0.03 and run.get_file_names() == ["outputs/model.pkl"]


def test_command_form_of_script_run_config(here):
    _script(here, "cmd.py", """
        import sys
        from azureml.core import Run
        Run.get_context().log_list("argv", sys.argv[1:])
    """)
    config = ScriptRunConfig(source_directory=".", command=["python", "cmd.py", "--lr", 0.5])
    run = Experiment(Workspace.from_config(), "cmd").submit(config)
    run.wait_for_completion()
    assert run.get_metrics() == {"argv": ["--lr", "0.5"]}


def test_sweep_through_runbridge_run(sweep, here):
    store = here / "store" / "runs.db"
    proc = subprocess.run([sys.executable, "-m", "runbridge", "run", "--backend", f"sqlite:{store}",
                           "--experiment", "sweep", "train.py"],
                          cwd=sweep, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "alpha is 0.95, and mse is" in proc.stdout
    assert "Completed" in proc.stderr
    runs = list(Experiment(Workspace(backends=[f"sqlite:{store}"]), "sweep").get_runs())
    assert len(runs) == 1
    _check_sweep(runs[0], here)


def test_runbridge_run_passes_arguments_and_exit_code(here):
    _script(here, "args.py", """
        import sys
        from azureml.core import Run
        run = Run.get_context()
        run.log_list("args", sys.argv[1:])
        print("argv", sys.argv[1:])
        sys.exit(int(sys.argv[1]))
    """)
    proc = subprocess.run([sys.executable, "-m", "runbridge", "run", "args.py", "3", "--flag", "x"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 3
    assert "argv ['3', '--flag', 'x']" in proc.stdout
    (run,) = Experiment(Workspace.from_config(), "args").get_runs()
    assert run.get_metrics() == {"args": ["3", "--flag", "x"]}
    assert run.get_status() == "Failed"
    assert "exited with code 3" in run.get_details()["error"]["error"]["message"]


def test_azureml_core_resolves_to_runbridge_only_inside_script_runs(here):
    _script(here, "uses_azureml.py", """
        from azureml.core import Environment, Experiment, Run, ScriptRunConfig, Workspace
        from azureml.core.run import Run as Run2
        import runbridge
        assert Run is Run2 is runbridge.Run and issubclass(Workspace, runbridge.Workspace)
        env = Environment("user-managed-env")
        env.python.user_managed_dependencies = True
        src = ScriptRunConfig(source_directory=".", script="x.py")
        src.run_config.environment = env
        ws = Workspace.from_config()
        run = Run.get_context()
        assert run.experiment.name == "uses_azureml"
        run.log("ok", 1)
    """)
    proc = subprocess.run([sys.executable, "-m", "runbridge", "run", "uses_azureml.py"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    (run,) = Experiment(Workspace.from_config(), "uses_azureml").get_runs()
    assert run.get_metrics() == {"ok": 1}
    # Outside script runs nothing is shadowed: importing runbridge does not provide azureml.
    plain = subprocess.run([sys.executable, "-c", "import runbridge, azureml.core"], capture_output=True, text=True, timeout=TIMEOUT)
    assert plain.returncode != 0 and "No module named 'azureml'" in plain.stderr


# -- failures ----------------------------------------------------------------------------------------
def test_raising_script_ends_failed_with_the_exception_message(here, capsys):
    _script(here, "bad.py", """
        from azureml.core import Run
        run = Run.get_context()
        run.log("before", 1)
        print("about to fail")
        raise ValueError("the data is bad")
    """)
    run = Experiment(Workspace.from_config(), "bad").submit(ScriptRunConfig(".", "bad.py"))
    with pytest.raises(RunFailedError) as caught:
        run.wait_for_completion(show_output=True)
    message = run.get_details()["error"]["error"]["message"]
    assert "ValueError: the data is bad" in message and "exited with code 1" in message
    assert caught.value.details["status"] == "Failed"
    assert "ValueError: the data is bad" in str(caught.value)
    assert run.get_status() == "Failed"
    assert run.get_metrics() == {"before": 1}
    assert "about to fail" in _read_file(run, "user_logs/std_log.txt", here)
    assert "Status: Failed" in capsys.readouterr().out
    details = run.wait_for_completion(raise_on_error=False)  # no raise: the details
    assert details["status"] == "Failed"


def test_sigkilled_script_ends_failed(here):
    _script(here, "killed.py", """
        import os, signal
        from azureml.core import Run
        run = Run.get_context()
        run.log("step", 1)
        run.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = Experiment(Workspace.from_config(), "killed").submit(ScriptRunConfig(".", "killed.py"))
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    assert "SIGKILL" in details["error"]["error"]["message"]
    assert run.get_metrics() == {"step": 1}


def test_missing_script_is_refused_before_any_run(here):
    exp = Experiment(Workspace.from_config(), "nothing")
    with pytest.raises(FileNotFoundError, match="nope.py"):
        exp.submit(ScriptRunConfig(".", "nope.py"))
    assert list(exp.get_runs()) == []


# -- while it runs -----------------------------------------------------------------------------------
GATED = """
    import pathlib, time
    from azureml.core import Run
    run = Run.get_context()
    print("started", flush=True)
    run.log("phase", 1)
    while not pathlib.Path("go").exists():
        time.sleep(0.05)
    run.log("phase", 2)
    print("finished")
"""


def test_output_is_visible_while_the_script_runs(here):
    _script(here, "gated.py", GATED)
    run = Experiment(Workspace.from_config(), "gated").submit(ScriptRunConfig(".", "gated.py"))
    live = _until(lambda: run.get_details()["logFiles"].get("user_logs/std_log.txt"), "the live log")
    _until(lambda: "started" in Path(live).read_text(), "the script's first line in the live log")
    assert run.get_status() == "Running"
    (here / "go").touch()
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    assert run.get_metrics() == {"phase": [1, 2]}
    assert "started\n" in _read_file(run, "user_logs/std_log.txt", here)


def test_another_process_waits_for_a_run_fetched_by_id_and_the_submitter_may_exit(here):
    _script(here, "gated.py", GATED)
    # The submitting process exits right after submit: the run still ends properly.
    submitter = subprocess.run(
        [sys.executable, "-c", "from runbridge import *; "
         "r = Experiment(Workspace.from_config(), 'gated').submit(ScriptRunConfig('.', 'gated.py')); print(r.id)"],
        capture_output=True, text=True, check=True, timeout=TIMEOUT)
    run_id = submitter.stdout.strip()
    waiter = subprocess.Popen(
        [sys.executable, "-c", "import sys; from runbridge import *; "
         f"d = Run(Experiment(Workspace.from_config(), 'gated'), {run_id!r}).wait_for_completion(show_output=True); "
         "print('WAITED', d['status'])"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = Run(Experiment(Workspace.from_config(), "gated"), run_id)
    assert run.get_status() == "Running"
    (here / "go").touch()
    out, err = waiter.communicate(timeout=TIMEOUT)
    assert waiter.returncode == 0, err
    assert "started" in out and "finished" in out and "WAITED Completed" in out
    assert run.get_status() == "Completed" and run.get_metrics() == {"phase": [1, 2]}


def test_ctrl_c_while_waiting_stops_waiting_not_the_run(here):
    _script(here, "gated.py", GATED)
    # A terminal's Ctrl-C goes to the whole foreground process group: simulate it with killpg.
    waiter = subprocess.Popen(
        [sys.executable, "-c", "from runbridge import *; "
         "r = Experiment(Workspace.from_config(), 'gated').submit(ScriptRunConfig('.', 'gated.py')); "
         "print(r.id, flush=True); r.wait_for_completion(show_output=True)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    run = Run(Experiment(Workspace.from_config(), "gated"), waiter.stdout.readline().strip())
    _until(lambda: run.get_metrics().get("phase") == 1, "the script to start logging")
    os.killpg(waiter.pid, signal.SIGINT)
    out, err = waiter.communicate(timeout=TIMEOUT)
    assert waiter.returncode != 0 and "KeyboardInterrupt" in err
    assert "Stopped waiting" in out
    assert run.get_status() == "Running"  # the script goes on
    (here / "go").touch()
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics() == {"phase": [1, 2]}


def test_ctrl_c_in_runbridge_run_reaches_the_script(here):
    _script(here, "gated.py", GATED)
    cli = subprocess.Popen([sys.executable, "-m", "runbridge", "run", "gated.py"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert cli.stdout.readline() == "started\n"
    os.killpg(cli.pid, signal.SIGINT)
    out, err = cli.communicate(timeout=TIMEOUT)
    assert cli.returncode == 130, err  # as `python gated.py` would: killed by SIGINT
    (run,) = Experiment(Workspace.from_config(), "gated").get_runs()
    assert run.get_status() == "Failed"
    message = run.get_details()["error"]["error"]["message"]
    assert "SIGINT" in message and "KeyboardInterrupt" in message


@pytest.mark.parametrize("waiter", ["submitting process", "run fetched by id"])
def test_a_killed_supervisor_leaves_the_run_failed_not_running(here, waiter):
    _script(here, "gated.py", GATED)
    run = Experiment(Workspace.from_config(), "gated").submit(ScriptRunConfig(".", "gated.py"))
    _until(lambda: run.get_metrics().get("phase") == 1, "the script to start logging")
    supervisor = run._submission.process
    supervisor.kill()
    supervisor.wait(timeout=TIMEOUT)
    try:
        if waiter == "submitting process":
            details = run.wait_for_completion(raise_on_error=False)
        else:
            details = Run(Experiment(Workspace.from_config(), "gated"), run.id).wait_for_completion(raise_on_error=False)
        assert details["status"] == "Failed"
        assert "supervisor" in details["error"]["error"]["message"]
    finally:
        (here / "go").touch()  # let the orphaned script end


def test_cancel_stops_the_script(here):
    _script(here, "gated.py", GATED)
    run = Experiment(Workspace.from_config(), "gated").submit(ScriptRunConfig(".", "gated.py"))
    _until(lambda: run.get_metrics().get("phase") == 1, "the script to start logging")
    run.cancel()
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Canceled"
    assert "finished" not in _read_file(run, "user_logs/std_log.txt", here)


def test_only_outputs_written_by_the_run_are_uploaded(here):
    (here / "outputs").mkdir()
    (here / "outputs" / "old.txt").write_text("from an earlier run")
    _script(here, "writes.py", """
        import pathlib
        pathlib.Path("outputs/new.txt").write_text("new")
        pathlib.Path("outputs/sub").mkdir(exist_ok=True)
        pathlib.Path("outputs/sub/deep.txt").write_text("deep")
    """)
    run = Experiment(Workspace.from_config(), "writes").submit(ScriptRunConfig(".", "writes.py"))
    run.wait_for_completion()
    assert run.get_file_names() == ["outputs/new.txt", "outputs/sub/deep.txt", "user_logs/std_log.txt"]
    assert _read_file(run, "outputs/sub/deep.txt", here) == "deep"


# -- several processes, one run ----------------------------------------------------------------------
WORKERS = """
    import multiprocessing as mp, os, subprocess, sys
    from azureml.core import Run

    N = 10_000

    def work(rank):
        run = Run.get_context()           # the submitted run, through the environment
        for i in range(N):
            run.log("points", rank * N + i)
        with run.child_run(name=f"rank{rank}") as child:
            child.log("rank", rank)

    if __name__ == "__main__":
        mode = sys.argv[1]
        run = Run.get_context()
        if mode != "rank":
            run.log("workers", 4)
        if mode == "launcher":            # ranks started by a launcher, as torchrun would
            procs = [subprocess.Popen([sys.executable, __file__, "rank"], env={**os.environ, "RANK": str(r)})
                     for r in range(4)]
            assert all(p.wait(timeout=300) == 0 for p in procs)
        elif mode == "rank":
            work(int(os.environ["RANK"]))
        else:
            ctx = mp.get_context(mode)
            procs = [ctx.Process(target=work, args=(r,)) for r in range(4)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            assert all(p.exitcode == 0 for p in procs)
        print("all workers done")
"""


@pytest.mark.parametrize("mode", ["fork", "spawn", "launcher"])
def test_four_workers_log_40000_points_to_one_run(here, mode):
    _script(here, "workers.py", WORKERS)
    run = Experiment(Workspace.from_config(), "workers").submit(ScriptRunConfig(".", "workers.py", [mode]))
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", details.get("error")
    points = run.get_metrics()["points"]
    assert len(points) == 40_000
    assert sorted(points) == list(range(40_000))  # none lost, none twice
    # every worker is a writer of its own (forked ones too), so each point has its own identity
    frame = run.get_metrics_frame("points")
    assert frame.groupby("writer").size().tolist() == [10_000] * 4
    assert not frame.duplicated(["writer", "seq"]).any()
    assert run.get_metrics(name="workers") == {"workers": 4}
    children = run.get_children()
    assert sorted(c.display_name for c in children) == ["rank0", "rank1", "rank2", "rank3"]
    assert all(c.get_status() == "Completed" for c in children)
    assert sorted(c.get_metrics()["rank"] for c in children) == [0, 1, 2, 3]
    assert len(list(Experiment(Workspace.from_config(), "workers").get_runs())) == 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_flush_when_the_pool_is_closed_and_joined(here, method):
    # Pool workers leave with os._exit (fork) or sys.exit (spawn): both flush what they buffered.
    _script(here, "pool.py", f"""
        import multiprocessing as mp
        from azureml.core import Run

        def work(rank):
            run = Run.get_context()
            for i in range(100):
                run.log("p", rank * 100 + i)

        if __name__ == "__main__":
            pool = mp.get_context({method!r}).Pool(4)
            pool.map(work, range(4))
            pool.close()
            pool.join()
    """)
    run = Experiment(Workspace.from_config(), "pool").submit(ScriptRunConfig(".", "pool.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    assert sorted(run.get_metrics()["p"]) == list(range(400))


# -- Run.get_context outside submit ------------------------------------------------------------------
def test_get_context_without_offline_outside_a_submitted_run_raises(here):
    _script(here, "strict.py", """
        from runbridge import Run
        Run.get_context(allow_offline=False)
    """)
    proc = subprocess.run([sys.executable, "strict.py"], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1
    assert "get_context(allow_offline=False) was called outside a submitted run" in proc.stderr
    assert "runbridge run" in proc.stderr
    # inside one, the same call returns the run
    run = Experiment(Workspace.from_config(), "strict").submit(ScriptRunConfig(".", "strict.py"))
    assert run.wait_for_completion()["status"] == "Completed"


def test_standalone_script_records_everything_and_completes(here):
    _script(here, "alone.py", """
        import multiprocessing as mp
        from runbridge import Run

        def work(rank):
            Run.get_context().log_list("from_workers", [rank] * 100)

        if __name__ == "__main__":
            run = Run.get_context()
            run.log("loss", 0.5)
            run.log("loss", 0.25)
            procs = [mp.get_context("fork").Process(target=work, args=(r,)) for r in range(2)]
            [p.start() for p in procs]
            [p.join() for p in procs]
            print("alone done")
    """)
    proc = subprocess.run([sys.executable, "alone.py"], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    (run,) = Experiment(Workspace.from_config(), "alone").get_runs()
    assert run.get_status() == "Completed"
    metrics = run.get_metrics()
    assert metrics["loss"] == [0.5, 0.25]
    assert sorted(metrics["from_workers"]) == [0] * 100 + [1] * 100


def test_standalone_script_with_an_uncaught_exception_fails(here):
    _script(here, "crash.py", """
        from runbridge import Run
        run = Run.get_context()
        run.log("x", 1)
        raise RuntimeError("crashed on purpose")
    """)
    proc = subprocess.run([sys.executable, "crash.py"], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1
    (run,) = Experiment(Workspace.from_config(), "crash").get_runs()
    assert run.get_status() == "Failed"
    assert "crashed on purpose" in run.get_details()["error"]["error"]["message"]
    assert run.get_metrics() == {"x": 1}


# -- the same script, every backend ------------------------------------------------------------------
EVERY_KIND = """
    from azureml.core import Run
    run = Run.get_context()
    for i in range(5):
        run.log("loss", 1.0 / (i + 1))
    run.log("epochs", 5)
    run.log("model", "ridge")
    run.log("flag", True)
    run.log_list("accuracies", [0.6, 0.7, 0.87])
    run.log_row("Y over X", x=1, y=0.4)
    run.log_row("Y over X", x=2, y=0.5)
    run.log_table("sines", {"angle": [0.0, 0.5, 1.0], "sine": [0.0, 0.479425538604203, 0.8414709848078965]})
    print("logged")
"""
EXPECTED = {
    "loss": [1.0, 0.5, 1.0 / 3, 0.25, 0.2],
    "epochs": 5,
    "model": "ridge",
    "flag": True,
    "accuracies": [0.6, 0.7, 0.87],
    "Y over X": {"x": [1, 2], "y": [0.4, 0.5]},
    "sines": {"angle": [0.0, 0.5, 1.0], "sine": [0.0, 0.479425538604203, 0.8414709848078965]},
}


@pytest.mark.parametrize("spec", ["sqlite:{tmp}/runs.db", "mlflow:sqlite:///{tmp}/mlflow.db", "tensorboard:{tmp}/tb"])
def test_runbridge_run_gives_equal_metrics_in_every_backend(here, spec):
    spec = spec.format(tmp=here)
    if spec.startswith("mlflow:sqlite:"):
        fresh_mlflow_db(here / "mlflow.db")  # an empty store, without MLflow's migrations per test
    _script(here, "every_kind.py", EVERY_KIND)
    proc = subprocess.run([sys.executable, "-m", "runbridge", "run", "-b", spec, "every_kind.py"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "logged" in proc.stdout
    (run,) = Experiment(Workspace(backends=[spec]), "every_kind").get_runs()
    assert run.get_status() == "Completed"
    assert run.get_metrics() == EXPECTED
    assert "logged" in _read_file(run, "user_logs/std_log.txt", here)


def test_a_third_party_store_named_relatively_is_found_by_the_script_and_kept_out_of_its_snapshot(here):
    """`jsonl:store` (the example third-party plugin) is a path relative to the submitting folder:
    the script, started in another folder, writes to the same store (its `store_location` hook made
    it absolute), and the snapshot of the source folder leaves the store out."""
    source = here / "src"
    source.mkdir()
    _script(source, "logs.py", """
        from runbridge import Run
        Run.get_context().log("from_the_script", 42)
    """)
    workspace = Workspace(backends=[f"jsonl:src/store"])  # inside source_directory, relative to here
    run = Experiment(workspace, "third-party").submit(ScriptRunConfig(str(source), "logs.py"))
    run.wait_for_completion()
    assert run.get_metrics() == {"from_the_script": 42}
    assert not (source / "src").exists()  # not resolved against the script's folder
    snapshot = zipfile.ZipFile(run.restore_snapshot(path=here))
    assert snapshot.namelist() == ["logs.py"]

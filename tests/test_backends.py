"""Backend discovery, spec parsing, contract validation and failure isolation."""

import subprocess
import sys
import warnings

import pytest

import runbridge
from runbridge import Experiment, Workspace
from runbridge.backends import Backend, BackendSpec, describe_installed, installed, open_backend
from runbridge.errors import BackendFailedWarning, RunbridgeError


def test_specs_split_on_the_first_colon():
    spec = BackendSpec.parse("mlflow:http://127.0.0.1:5000")
    assert (spec.name, spec.location) == ("mlflow", "http://127.0.0.1:5000")
    assert str(BackendSpec.parse("SQLite:runs.db")) == "sqlite:runs.db"


def test_builtin_and_third_party_backends_register_through_the_entry_point_group():
    names = installed()
    assert {"sqlite", "mlflow", "tensorboard", "jsonl"} <= set(names)
    rows = {r["name"]: r for r in describe_installed()}
    assert rows["sqlite"]["distribution"] == "runbridge" and rows["sqlite"]["importable"]
    assert rows["mlflow"]["extra"] == "mlflow"
    assert rows["jsonl"]["distribution"] == "runbridge-jsonl"


def test_a_missing_extra_says_which_pip_install_fixes_it(tmp_path):
    # A real import failure: this child process cannot import mlflow.
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from runbridge import Workspace\n"
        f"Workspace(backends=['mlflow:sqlite:///{tmp_path}/m.db'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "backend 'mlflow' cannot be loaded" in result.stderr
    assert "pip install 'runbridge[mlflow]'" in result.stderr
    assert "installed backends:" in result.stderr


class _WrongArgument:
    @runbridge.hookimpl
    def write(self, run, recordz):
        pass


class _MissingRequired:
    @runbridge.hookimpl
    def write(self, run, records):
        pass


def test_hook_signatures_are_validated_at_open():
    with pytest.raises(RunbridgeError, match="(?s)does not fit the hook contract.*recordz"):
        Backend(BackendSpec("bad", "x"), _WrongArgument())
    with pytest.raises(RunbridgeError, match="does not implement the required hooks: start_run, end_run, read"):
        Backend(BackendSpec("bad", "x"), _MissingRequired())


def test_a_failing_backend_is_disabled_with_one_warning_and_the_others_carry_on(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    ws = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}", f"jsonl:{blocker / 'sub'}"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Experiment(ws, "fan").start_logging(outputs=None)
        for i in range(1000):
            run.log("loss", float(i))
        run.tag("t", "v")
        run.complete()
    failures = [w for w in caught if issubclass(w.category, BackendFailedWarning)]
    assert len(failures) == 1
    assert "jsonl:" in str(failures[0].message) and run.id in str(failures[0].message)
    fresh = Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "fan")
    again = runbridge.Run(fresh, run.id)
    assert again.get_metrics()["loss"] == [float(i) for i in range(1000)]
    assert again.get_status() == "Completed"


def test_a_backend_failing_mid_run_keeps_the_others_complete(tmp_path):
    ws = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}", f"jsonl:{tmp_path / 'jsonl'}"])
    run = Experiment(ws, "mid").start_logging(outputs=None)
    run.log("x", 1)
    run.flush()
    records = next((tmp_path / "jsonl").glob(f"*/{run.id}/records.jsonl"))
    records.unlink()
    records.mkdir()  # appending to it now fails
    with pytest.warns(BackendFailedWarning, match="jsonl"):
        run.log("x", 2)
        run.flush()
    run.log("x", 3)
    run.complete()
    assert runbridge.Run(Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "mid"),
                         run.id).get_metrics() == {"x": [1, 2, 3]}


def test_open_backend_gives_a_handle_with_the_parsed_spec(tmp_path):
    backend = open_backend(f"sqlite:{tmp_path / 'x.db'}")
    assert backend.name == "sqlite" and repr(backend).startswith("<Backend sqlite:")


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    """Backends write run files through runbridge.media: a copy that fails leaves nothing behind."""
    from runbridge.media import write_file_atomically

    dest = tmp_path / "files" / "a.txt"
    write_file_atomically(dest, data=b"old")
    with pytest.raises(FileNotFoundError):
        write_file_atomically(dest, source=str(tmp_path / "missing"))
    assert dest.read_bytes() == b"old"
    assert [p.name for p in dest.parent.iterdir()] == ["a.txt"]

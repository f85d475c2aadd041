"""Configuration precedence: argument > RUNBRIDGE_BACKENDS > runbridge.toml / pyproject > default."""

import pytest

from runbridge import Workspace
from runbridge.config import DEFAULT_BACKENDS, resolve_backends
from runbridge.errors import RunbridgeError


def test_default_is_the_embedded_sqlite_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_backends() == list(DEFAULT_BACKENDS) == ["sqlite:.runbridge/runs.db"]
    ws = Workspace.from_config()
    assert ws.backends[0].impl.path == tmp_path / ".runbridge" / "runs.db"


def test_runbridge_toml_is_found_upward(tmp_path, monkeypatch):
    (tmp_path / "runbridge.toml").write_text('backends = ["sqlite:a.db", "jsonl:j"]\n')
    deep = tmp_path / "x" / "y"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert resolve_backends() == ["sqlite:a.db", "jsonl:j"]


def test_pyproject_tool_table(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\n[tool.runbridge]\nbackends = ["jsonl:runs"]\n')
    monkeypatch.chdir(tmp_path)
    assert resolve_backends() == ["jsonl:runs"]


def test_environment_beats_files_and_argument_beats_environment(tmp_path, monkeypatch):
    (tmp_path / "runbridge.toml").write_text('backends = ["sqlite:file.db"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNBRIDGE_BACKENDS", "sqlite:env.db, jsonl:env")
    assert resolve_backends() == ["sqlite:env.db", "jsonl:env"]
    assert resolve_backends(["sqlite:arg.db"]) == ["sqlite:arg.db"]
    assert Workspace(backends="sqlite:arg.db").specs == ["sqlite:arg.db"]


def test_a_malformed_config_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "runbridge.toml").write_text("backends = 3\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunbridgeError, match="runbridge.toml: 'backends' must be a non-empty list"):
        resolve_backends()


def test_each_backend_makes_its_own_locations_absolute_without_opening_them(tmp_path):
    """The core knows no backend's address syntax: each plugin's `store_location` hook answers."""
    from runbridge.backends import absolute_spec, locate

    base = tmp_path / "base"
    assert absolute_spec("sqlite:runs.db", base) == f"sqlite:{base / 'runs.db'}"
    assert f"{base / 'runs.db'}-artifacts" in locate("sqlite:runs.db", base).paths
    assert absolute_spec("tensorboard:tb", base) == f"tensorboard:{base / 'tb'}"
    assert absolute_spec("jsonl:j", base) == f"jsonl:{base / 'j'}"  # a third-party plugin
    assert absolute_spec("mlflow:sqlite:///m.db", base) == f"mlflow:sqlite:///{base / 'm.db'}"
    assert str(base / "mlartifacts") in locate("mlflow:sqlite:///m.db", base).paths
    assert absolute_spec("mlflow:file:mlruns", base) == f"mlflow:file://{base / 'mlruns'}"
    assert absolute_spec("mlflow:http://127.0.0.1:5000", base) == "mlflow:http://127.0.0.1:5000"
    assert locate("mlflow:http://127.0.0.1:5000", base).paths == ()
    assert not base.exists()  # describing a store creates nothing

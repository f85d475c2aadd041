"""Shared fixtures. Every test writes under its own tmp_path; nothing lands in the work tree."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch, tmp_path):
    """No test sees the developer's RUNBRIDGE_* variables or runbridge.toml, and each runs in its own
    folder, so relative defaults (./mlruns, .runbridge/, downloads) never land in the work tree."""
    monkeypatch.chdir(tmp_path)
    for var in ("RUNBRIDGE_BACKENDS", "RUNBRIDGE_RUN_ID", "RUNBRIDGE_EXPERIMENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RUNBRIDGE_SPOOL", str(tmp_path / "spool"))  # what failed backends missed


from mlflow_fixtures import mlflow_server  # noqa: E402,F401  (one real `mlflow server` per session)

"""Shared fixtures. Every test writes under its own tmp_path; nothing lands in the work tree."""

import pytest

import mlflow_fixtures
from mlflow_fixtures import fast_mlflow_http, mlflow_server, mlflow_sqlite  # noqa: F401  (fixtures: one real `mlflow server` per session)
from postgres_fixtures import mlflow_postgres_server, postgres  # noqa: F401  (one PostgreSQL + its server)


#: Fixtures that start a server once per process: tests using one run in one pytest-xdist worker,
#: so the suite starts each server once instead of once per worker.
#: (A test that starts its own `mlflow server` on the session's PostgreSQL is grouped apart from the
#: users of the shared one, so the two groups can run on different workers, each with its PostgreSQL.)
SERVER_FIXTURES = ("mlflow_server", "tensorboard_server", "mlflow_postgres_server", "postgres")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Group the tests of each server fixture (`--dist loadgroup`, see pyproject.toml)."""
    for item in items:
        for name in SERVER_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                break


@pytest.fixture(scope="session", autouse=True)
def _mlflow_template_home(tmp_path_factory):
    """Fresh MLflow stores are copies of one migrated database kept in pytest's temp folder
    (built on first use, once per process, so a pytest-xdist worker builds its own)."""
    mlflow_fixtures.set_template_home(tmp_path_factory.mktemp("mlflow-template"))


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch, tmp_path):
    """No test sees the developer's RUNBRIDGE_* variables or runbridge.toml, and each runs in its own
    folder, so relative defaults (./mlruns, .runbridge/, downloads) never land in the work tree."""
    monkeypatch.chdir(tmp_path)
    for var in ("RUNBRIDGE_BACKENDS", "RUNBRIDGE_RUN_ID", "RUNBRIDGE_EXPERIMENT",
                "RUNBRIDGE_MLFLOW_PROBE_INTERVAL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RUNBRIDGE_SPOOL", str(tmp_path / "spool"))  # what failed backends missed

"""The contract suite (runbridge.testing.BackendContract) bound to every backend.

One class per backend configuration; the tests are the same for all of them.
"""

import pytest

from mlflow_fixtures import mlflow_sqlite_uri
from runbridge.testing import BackendContract


class TestSQLiteBackend(BackendContract):
    @pytest.fixture
    def backend_spec(self, tmp_path):
        return f"sqlite:{tmp_path / 'store' / 'runs.db'}"


class TestJsonlExampleBackend(BackendContract):
    """The third-party example in examples/runbridge-jsonl, installed as its own distribution."""

    @pytest.fixture
    def backend_spec(self, tmp_path):
        return f"jsonl:{tmp_path / 'jsonl-store'}"


# --- MLflow (runbridge_mlflow): SQLite store, a real tracking server, the file store -------------
# (the mlflow_server fixture comes from conftest.py)
class TestMlflowSQLiteBackend(BackendContract):
    @pytest.fixture
    def backend_spec(self, tmp_path):
        return f"mlflow:{mlflow_sqlite_uri(tmp_path / 'mlflow')}"


@pytest.mark.slow
class TestMlflowServerBackend(BackendContract):
    @pytest.fixture
    def backend_spec(self, mlflow_server, fast_mlflow_http):
        return f"mlflow:{mlflow_server.url}"


@pytest.mark.slow
class TestMlflowPostgresServerBackend(BackendContract):
    """The shared tracker of a team: an `mlflow server` with PostgreSQL behind it."""

    @pytest.fixture
    def backend_spec(self, mlflow_postgres_server, fast_mlflow_http):
        return f"mlflow:{mlflow_postgres_server.url}"


class TestMlflowFileStoreBackend(BackendContract):
    @pytest.fixture
    def backend_spec(self, tmp_path, monkeypatch):
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        return f"mlflow:{(tmp_path / 'mlruns').as_uri()}"


# --- TensorBoard (runbridge_tensorboard): event files under a log folder ------------------------
class TestTensorBoardBackend(BackendContract):
    @pytest.fixture
    def backend_spec(self, tmp_path):
        return f"tensorboard:{tmp_path / 'tb-logs'}"

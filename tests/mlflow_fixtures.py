"""Fixtures for the MLflow backend tests: a real `mlflow server` for the session, and fresh
MLflow SQLite stores that cost a file copy instead of MLflow's schema migrations.

Import them from a test module or from conftest.py::

    from mlflow_fixtures import mlflow_server, mlflow_sqlite_uri  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

#: Keep MLflow's HTTP client from retrying for minutes when something is wrong.
FAST_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}


#: How often the MLflow backend probes an http server in tests that stop one (seconds).
FAST_PROBE_INTERVAL = "0.2"

_template_home: Path | None = None  # where this process keeps its migrated empty database
_template: Path | None = None


def set_template_home(folder: Path) -> None:
    """Keep the template database under `folder` (conftest points it into pytest's temp folder)."""
    global _template_home
    _template_home = folder


def _template_db() -> Path:
    """An empty MLflow SQLite database with every migration applied, built once per process."""
    global _template
    if _template is None or not _template.exists():
        home = _template_home or Path(tempfile.mkdtemp(prefix="runbridge-mlflow-template-"))
        home.mkdir(parents=True, exist_ok=True)
        building = home / f"building-{os.getpid()}.db"
        try:  # the schema only: each copy then adds its own default experiment where it lives
            import sqlalchemy
            from mlflow.store.db.utils import _initialize_tables
        except ImportError:  # MLflow moved its helper: let a client build the store instead
            from mlflow import MlflowClient

            MlflowClient(f"sqlite:///{building}").search_experiments()
        else:
            engine = sqlalchemy.create_engine(f"sqlite:///{building}")
            try:
                _initialize_tables(engine)
            finally:
                engine.dispose()
        _template = building.replace(home / "template.db")
    return _template


def fresh_mlflow_db(path: Path) -> Path:
    """An empty MLflow SQLite database at `path`: a copy of the migrated template, so a test gets
    its own store without running MLflow's schema migrations (seconds each) again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        shutil.copyfile(_template_db(), path)
    return path


def mlflow_sqlite_uri(folder: Path) -> str:
    """The tracking URI of a fresh MLflow SQLite store `folder/mlflow.db` (see fresh_mlflow_db)."""
    return f"sqlite:///{fresh_mlflow_db(Path(folder) / 'mlflow.db')}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class MlflowServer:
    """A running `mlflow server` on 127.0.0.1, artifacts proxied into `root/mlartifacts`. Its
    backend store is `backend_store_uri` (e.g. a PostgreSQL database), by default a fresh SQLite
    database `root/mlflow.db`; `workers` is the server's number of worker processes."""

    def __init__(self, root: Path, backend_store_uri: str | None = None, workers: int = 1):
        self.root = root
        self.backend_store_uri = backend_store_uri
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "MlflowServer":
        self.root.mkdir(parents=True, exist_ok=True)
        store = self.backend_store_uri
        if store is None:
            fresh_mlflow_db(self.root / "mlflow.db")  # kept when the server restarts on the same root
            store = f"sqlite:///{self.root / 'mlflow.db'}"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", store,
            "--artifacts-destination", str(self.root / "mlartifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
        ]
        # No background job runner: it starts seven more Python processes (GenAI jobs) that
        # these tests never use, and costs more to start than the tracking server itself.
        env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                            env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')[-3000:]}")
            if _answers(self.url):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server on {self.url} did not answer within {timeout:.0f}s:\n"
                           f"{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and its worker processes
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` for the whole session; yields it (`.url`), stops it after."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_sqlite(tmp_path) -> str:
    """The tracking URI of a fresh MLflow SQLite store of this test's own."""
    return mlflow_sqlite_uri(tmp_path / "mlflow")


@pytest.fixture
def fast_mlflow_http(monkeypatch):
    """Short MLflow HTTP retries and timeouts for one test."""
    for key, value in FAST_HTTP_ENV.items():
        monkeypatch.setenv(key, value)

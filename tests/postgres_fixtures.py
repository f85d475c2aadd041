"""A real PostgreSQL server for the tests, and an `mlflow server` on it: the shared tracker a team
runs when it trains on several machines (README, Scaling out).

    from postgres_fixtures import postgres, mlflow_postgres_server  # noqa: F401

`postgres` is one PostgreSQL server per session (its own throw-away data folder, a free port on
127.0.0.1); `mlflow_postgres_server` is one `mlflow server` on a database of it. A test that needs
them and cannot start them fails, saying what to install: it never skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

from mlflow_fixtures import MlflowServer, free_port

#: What to install when PostgreSQL cannot start (.ci/run does it on a machine without it).
INSTALL_HINT = ("install PostgreSQL's server binaries (Debian: `apt-get install -y postgresql`, as .ci/run "
                "does) and the driver (`pip install -e '.[server]'`)")
TEMPLATE = "mlflow_template"


def postgres_bin() -> Path:
    """The folder holding `initdb` and `pg_ctl`: on PATH, else Debian's newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if not versions:
        raise RuntimeError(f"PostgreSQL's initdb was not found on PATH nor in /usr/lib/postgresql/*/bin: {INSTALL_HINT}")
    return Path(versions[-1]).parent


class PostgresServer:
    """A PostgreSQL server in a throw-away data folder, listening on 127.0.0.1 only, trusting
    local connections (user `postgres`, no password). PostgreSQL refuses to run as root, so as
    root it runs as the `postgres` system user, in a folder that user owns."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        # Outside pytest's own temp folder: that one is private to the user running pytest (0700,
        # re-tightened by every pytest session), which the `postgres` user could not enter.
        self.root = Path(tempfile.mkdtemp(prefix="runbridge-postgres-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self.owner: str | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(f"running as root, and there is no `postgres` user to run PostgreSQL: {INSTALL_HINT}") from None
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.owner = "postgres"

    def uri(self, database: str) -> str:
        """The SQLAlchemy URI of `database` (what `mlflow server --backend-store-uri` takes), naming
        the driver the `server` extra installs (psycopg 3)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}")

    def start(self) -> "PostgresServer":
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        # fsync off: a test database is thrown away, so crash safety only costs time here
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")
        self._make_template()
        return self

    def _connect(self, database: str = "postgres"):
        try:
            import psycopg
        except ImportError:
            raise RuntimeError(f"the PostgreSQL driver psycopg is not installed: {INSTALL_HINT}") from None
        # autocommit: CREATE DATABASE refuses to run inside a transaction
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True)

    def _make_template(self) -> None:
        """An empty MLflow schema in database `mlflow_template`: each database `new_database`
        makes is a copy of it (PostgreSQL copies files), not another run of MLflow's migrations."""
        connection = self._connect()
        try:
            connection.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            connection.close()
        import sqlalchemy
        from mlflow.store.db.utils import _initialize_tables

        engine = sqlalchemy.create_engine(self.uri(TEMPLATE))
        try:
            with warnings.catch_warnings():  # MLflow's old migrations use SQLAlchemy's deprecated loaders
                warnings.simplefilter("ignore")
                _initialize_tables(engine)
        finally:
            engine.dispose()

    def new_database(self, name: str) -> str:
        """A new database `name` holding an empty MLflow schema; returns its URI."""
        connection = self._connect()
        try:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
        finally:
            connection.close()
        return self.uri(name)

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
            except RuntimeError:
                pass  # not running (a failed start)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """A started PostgreSQL server, or a RuntimeError saying what to install."""
    server = PostgresServer()
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session (stopped and its data folder removed after)."""
    try:
        server = start_postgres()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not start PostgreSQL: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_postgres_server(postgres, tmp_path_factory):
    """A real `mlflow server` on PostgreSQL (database `mlflow`), artifacts proxied into a folder."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-postgres-server"),
                          backend_store_uri=postgres.new_database("mlflow")).start()
    try:
        yield server
    finally:
        server.stop()

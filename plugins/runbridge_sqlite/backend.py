"""The built-in SQLite store: the reference model, one table per record kind (metric points packed
as columns, one row per written batch: see chunks.py).

WAL mode and a busy timeout so several processes can write one store; one transaction per batch
with ``executemany``. Run files live in a folder beside the database:
``<db>-artifacts/<run id>/<name>``.

Connections open lazily. Reads use a read-only connection (``mode=ro``) and never create, migrate
or index the database, so a store on a read-only disk or owned by someone else can be read and a
mistyped path is an error, not a new empty store. The first write hook opens the read-write
connection (creating the folder and database, migrating the schema), which then serves reads too.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Sequence

from runbridge import forksafe
from runbridge.batch import metric_points
from runbridge.errors import StoreNotFoundError
from runbridge.hookspecs import StoreLocation, hookimpl
from runbridge.media import safe_join, write_file_atomically
from runbridge.records import (RESERVED_PREFIX, File, Image, Metric, Property, Record, Row, RunColumns, RunInfo, RunSummary, Tag,
                               collector_paused)

from .chunks import Batch, ColumnsBuilder, pack, unpack
from .schema import MIGRATIONS, check_version, legacy_value, migrate
from .summary import batch_trios, loaded, merge

BUSY_TIMEOUT_MS = 30_000


def _dump_cells(cells: tuple) -> str:
    # Python's json keeps floats exact (repr) and writes NaN/Infinity, which it reads back.
    return json.dumps([[c, v] for c, v in cells], ensure_ascii=False)


def _load_cells(text: str) -> tuple:
    return tuple((c, v) for c, v in json.loads(text))


class SQLiteBackend:
    """``sqlite:path/runs.db``: runs, metrics and files in one local SQLite database."""

    @staticmethod
    @hookimpl
    def store_location(location: str, base: str) -> StoreLocation:
        """The database path, absolute; the store owns it, its journal files and its artifacts."""
        db = (Path(base) / Path(location).expanduser()).resolve()
        return StoreLocation(str(db), tuple(f"{db}{suffix}" for suffix in ("", "-artifacts", "-wal", "-shm", "-journal")))

    def __init__(self, location: str):
        if not location:
            raise ValueError("the sqlite backend needs a database path, e.g. 'sqlite:.runbridge/runs.db'")
        self.path = Path(location).expanduser().resolve()
        self.artifact_root = self.path.with_name(self.path.name + "-artifacts")
        self._lock = forksafe.guarded_lock()  # every transaction holds it, and so does fork()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_version = 0
        self._run_pks: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r})"

    # -- connections -----------------------------------------------------------------------------
    @property
    def _conn(self) -> sqlite3.Connection:
        """The read-write connection once a write opened it, else the read-only one."""
        if self._writer is not None:
            return self._writer
        with self._lock:
            if self._reader is None:
                self._reader = self._open_read_only()
            return self._reader

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreNotFoundError(f"no runbridge SQLite store at {self.path} (a store is created when "
                                     "a run writes to it; check the path)")
        uri = self.path.as_uri()
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            if os.access(self.path.parent, os.W_OK):
                raise
            # A WAL database in a folder this user cannot write, its -shm/-wal files gone: no one
            # can be writing it, so read the file as it is.
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._read_version = check_version(conn)
        return conn

    @property
    def _writer_column(self) -> str:
        """What to select as a record's writer: a read-only connection may face a store made
        before writers were recorded (schema 1), which reads are not allowed to migrate."""
        if self._writer is None and self._read_version < 2:
            return "''"
        return "writer"

    @property
    def _has_summary(self) -> bool:
        """Whether the store keeps per-run metric summaries (schema 4)."""
        return self._writer is not None or self._read_version >= 4

    @property
    def _has_chunks(self) -> bool:
        """Whether the store has packed metric chunks (schema 3): a read-only connection may face
        an older store, which reads are not allowed to migrate."""
        return self._writer is not None or self._read_version >= 3

    def _notice_upgrade(self) -> None:
        """Re-read the schema version of an older store this read-only connection faces: another
        process may have upgraded it (and written packed points) since it was opened."""
        if self._writer is None and self._read_version < len(MIGRATIONS):
            self._read_version = check_version(self._conn)

    def _writable(self) -> sqlite3.Connection:
        """The read-write connection, opened (and the store created and migrated) on first use."""
        with self._lock:
            if self._writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                migrate(conn)
                self._writer = conn
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
            return self._writer

    # -- helpers -------------------------------------------------------------------------------
    def _run_pk(self, run_id: str) -> int | None:
        pk = self._run_pks.get(run_id)
        if pk is None:
            row = self._conn.execute("SELECT pk FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            pk = self._run_pks[run_id] = row[0]
        return pk

    def _run_dir(self, run_id: str) -> Path:
        return safe_join(self.artifact_root, run_id)

    def _transaction(self, work) -> None:
        with self._lock:
            self._writable()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                work(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- hooks ---------------------------------------------------------------------------------
    @hookimpl
    def start_run(self, run: RunInfo) -> None:
        self._transaction(lambda c: c.execute(
            "INSERT INTO runs (run_id, experiment, display_name, parent_id, status, start_time, end_time, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
            (run.run_id, run.experiment, run.display_name, run.parent_id, run.status,
             run.start_time, run.end_time, run.error),
        ))

    @hookimpl
    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        with self._lock:
            self._writable()
            pk = self._run_pk(run.run_id)
            if pk is None:
                self.start_run(run)
                pk = self._run_pk(run.run_id)
        run_dir = self._run_dir(run.run_id)
        rows, images, tags, props, files = [], [], [], [], []
        # A batch of logged points is mostly metric points, as plain tuples: never a record made per point.
        metrics, others = metric_points(records)
        for rec in others:
            kind = type(rec)
            if kind is Row:
                rows.append((pk, rec.name, rec.seq, _dump_cells(rec.cells), rec.time, rec.from_table,
                             rec.description or None, rec.writer))
            elif kind is Image:
                if rec.data is not None:
                    write_file_atomically(safe_join(run_dir, rec.file_name), data=rec.data)
                images.append((pk, rec.name, rec.seq, rec.file_name, rec.media_type, rec.time, rec.step,
                               rec.description or None, rec.writer))
            elif kind is Tag:
                tags.append((pk, rec.key, rec.value, rec.time, rec.removed))
            elif kind is Property:
                props.append((pk, rec.key, rec.value, rec.time))
            elif kind is File:
                # Files land before the transaction that lists them: a listed file always exists.
                write_file_atomically(safe_join(run_dir, rec.name), data=rec.data, source=rec.source)
                files.append((pk, rec.name, rec.size, rec.sha256, rec.time))
            else:
                raise TypeError(f"the sqlite backend cannot store a {kind.__name__} record")

        batch = Batch(metrics) if metrics else None
        trios = batch_trios(batch) if batch else {}

        def work(c: sqlite3.Connection) -> None:
            if batch:
                c.execute("INSERT INTO metric_chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (pk, *pack(batch)))
                merge(c, pk, trios)
            if rows:
                c.executemany("INSERT INTO table_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if images:
                c.executemany("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", images)
            if tags:
                c.executemany("INSERT INTO tags VALUES (?, ?, ?, ?, ?)", tags)
            if props:
                c.executemany("INSERT INTO properties VALUES (?, ?, ?, ?)", props)
            if files:
                c.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", files)

        self._transaction(work)

    @hookimpl
    def end_run(self, run: RunInfo, status: str) -> None:
        self._transaction(lambda c: c.execute(
            "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE run_id = ?",
            (status, run.end_time, run.error, run.run_id),
        ))

    @hookimpl
    def read(self, experiment: str, run_id: str) -> list[Record] | None:
        with self._lock, collector_paused():
            row = self._conn.execute(
                "SELECT pk, run_id, experiment, display_name, parent_id, status, start_time, end_time, error"
                " FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            pk = row[0]
            self._notice_upgrade()
            out: list[Record] = [RunInfo(*row[1:])]
            # The hot path of reading a long run: one comprehension, floats passed through as stored.
            new, as_bool, convert = tuple.__new__, (False, True), legacy_value
            out.extend([
                new(Metric, (name, seq, value if vtype == 0 and value is not None else convert(value, vtype),
                             step, time, as_bool[from_list], description, writer))
                for name, seq, value, vtype, step, time, from_list, description, writer in self._conn.execute(
                    "SELECT name, seq, value, vtype, step, time, from_list, COALESCE(description, ''), "
                    f"{self._writer_column}"
                    " FROM metrics WHERE run = ? ORDER BY rowid", (pk,))
            ])
            if self._has_chunks:
                for chunk in self._conn.execute(
                        "SELECT n, series, which, seqs, vals, steps, times, extra FROM metric_chunks"
                        " WHERE run = ? ORDER BY rowid", (pk,)):
                    out.extend(unpack(*chunk))
            out.extend(self._rows_and_images(pk, None))
            for key, value, time, removed in self._conn.execute(
                    "SELECT key, value, time, removed FROM tags WHERE run = ? ORDER BY rowid", (pk,)):
                out.append(Tag(key, value, time, bool(removed)))
            for key, value, time in self._conn.execute(
                    "SELECT key, value, time FROM properties WHERE run = ? ORDER BY rowid", (pk,)):
                out.append(Property(key, value, time))
            run_dir = self._run_dir(run_id)
            for name, size, sha256, time in self._conn.execute(
                    "SELECT name, size, sha256, time FROM files WHERE run = ? ORDER BY rowid", (pk,)):
                out.append(File(name, size, sha256, time, str(safe_join(run_dir, name))))
        return out

    def _rows_and_images(self, pk: int, name: str | None) -> list[Record]:
        """The run's table rows and file metrics (of metric `name` only, if given), in write order."""
        which, args = ("", (pk,)) if name is None else (" AND name = ?", (pk, name))
        out: list[Record] = []
        for name_, seq, cells, time, from_table, description, writer in self._conn.execute(
                f"SELECT name, seq, cells, time, from_table, description, {self._writer_column} FROM table_rows"
                f" WHERE run = ?{which} ORDER BY rowid", args):
            out.append(Row(name_, seq, _load_cells(cells), time, bool(from_table), description or "", writer))
        for name_, seq, file_name, media_type, time, step, description, writer in self._conn.execute(
                f"SELECT name, seq, file_name, media_type, time, step, description, {self._writer_column} FROM images"
                f" WHERE run = ?{which} ORDER BY rowid", args):
            out.append(Image(name_, seq, file_name, media_type, time, step, None, description or "", writer))
        return out

    @hookimpl
    def read_info(self, experiment: str, run_id: str) -> RunInfo | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT run_id, experiment, display_name, parent_id, status, start_time, end_time, error"
                " FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else RunInfo(*row)

    @hookimpl
    def read_metrics(self, experiment: str, run_id: str, name: str | None) -> RunColumns | None:
        with self._lock, collector_paused():
            pk = self._run_pk(run_id)
            if pk is None:
                return None
            self._notice_upgrade()
            builder = ColumnsBuilder(name)
            which, args = ("", (pk,)) if name is None else (" AND name = ?", (pk, name))
            builder.add_points([(name_, seq, legacy_value(value, vtype), step, time, bool(from_list), writer)
                                for name_, seq, value, vtype, step, time, from_list, writer in self._conn.execute(
                f"SELECT name, seq, value, vtype, step, time, from_list, {self._writer_column} FROM metrics"
                f" WHERE run = ?{which} ORDER BY rowid", args)])
            if self._has_chunks:
                for chunk in self._conn.execute(
                        "SELECT n, series, which, seqs, vals, steps, times, extra FROM metric_chunks"
                        " WHERE run = ? ORDER BY rowid", (pk,)):
                    builder.add_chunk(*chunk)
            return RunColumns(builder.columns(), self._rows_and_images(pk, name))

    @hookimpl
    def summarize_runs(self, experiment: str | None) -> list[RunSummary] | None:
        with self._lock:
            self._notice_upgrade()
            if not self._has_summary:
                return None  # an older store this reader may not upgrade: the core reads each run
            where, args = ("", ()) if experiment is None else (" WHERE experiment = ?", (experiment,))
            runs = self._conn.execute(
                "SELECT pk, run_id, experiment, display_name, parent_id, status, start_time, end_time, error"
                f" FROM runs{where} ORDER BY start_time DESC, pk DESC", args).fetchall()
            # Each table is scanned in rowid order (write order), runs picked by pk.
            chosen, args = ("", ()) if experiment is None else (
                " WHERE run IN (SELECT pk FROM runs WHERE experiment = ?)", (experiment,))
            metrics: dict[int, dict[str, tuple]] = {pk: {} for pk, *_ in runs}
            for row in self._conn.execute(
                    f"SELECT run, name, last, min, max FROM metric_summary{chosen} ORDER BY rowid", args):
                metrics[row[0]][row[1]] = row[2:]
            for pk, name, *trio in self._conn.execute(  # ints beyond 64 bits, kept as text
                    "SELECT run, name, last, min, max FROM metric_summary WHERE typeof(last) = 'text'"
                    " OR typeof(min) = 'text' OR typeof(max) = 'text'"):
                if pk in metrics:
                    metrics[pk][name] = tuple(map(loaded, trio))
            tags: dict[int, dict[str, str | None]] = {pk: {} for pk, *_ in runs}
            for pk, key, value, removed in self._conn.execute(
                    f"SELECT run, key, value, removed FROM tags{chosen} ORDER BY rowid", args):
                if removed:
                    tags[pk].pop(key, None)
                else:
                    tags[pk][key] = value
            props: dict[int, dict[str, str | None]] = {pk: {} for pk, *_ in runs}
            for pk, key, value in self._conn.execute(
                    f"SELECT run, key, value FROM properties{chosen} ORDER BY rowid", args):
                if not key.startswith(RESERVED_PREFIX):
                    props[pk].setdefault(key, value)
        return [RunSummary(RunInfo(*info), tags[pk], props[pk], metrics[pk]) for pk, *info in runs]

    @hookimpl
    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        query = ("SELECT run_id, experiment, display_name, parent_id, status, start_time, end_time, error"
                 " FROM runs")
        args: tuple = ()
        if experiment is not None:
            query += " WHERE experiment = ?"
            args = (experiment,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY start_time DESC, pk DESC", args).fetchall()
        return [RunInfo(*r) for r in rows]

    @hookimpl
    def list_experiments(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT experiment FROM runs ORDER BY experiment")]

    @hookimpl
    def run_url(self, run: RunInfo) -> str:
        return f"sqlite:{self.path} (run {run.run_id}; files in {self._run_dir(run.run_id)})"

    @hookimpl
    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool | None:
        source = safe_join(self._run_dir(run.run_id), name)
        if not source.is_file():
            return None
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        return True

"""The SQLite store's schema, versioned with ``PRAGMA user_version`` and migrated forward."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Union

# How a point of the old one-row-per-point layout (`metrics`, schema < 3) stores its value.
VTYPE_FLOAT, VTYPE_INT, VTYPE_BOOL, VTYPE_STR, VTYPE_NONE, VTYPE_BIGINT = range(6)
_NAN = float("nan")


def legacy_value(value: Any, vtype: int) -> Any:
    """A value of the one-row-per-point layout as it was logged."""
    if vtype == VTYPE_FLOAT:
        return _NAN if value is None else float(value)
    if vtype == VTYPE_BOOL:
        return bool(value)
    if vtype == VTYPE_BIGINT:
        return int(value)
    return value


def _backfill_summary(conn: sqlite3.Connection) -> None:
    from .summary import backfill

    backfill(conn)


#: Each entry upgrades the schema from version i to i + 1. Never edit a shipped entry: append.
MIGRATIONS: list[list[Union[str, Callable[[sqlite3.Connection], None]]]] = [
    [  # 0 -> 1: one table per record kind
        """CREATE TABLE runs (
            pk INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL UNIQUE,
            experiment TEXT NOT NULL,
            display_name TEXT,
            parent_id TEXT,
            status TEXT NOT NULL,
            start_time INTEGER NOT NULL,
            end_time INTEGER,
            error TEXT)""",
        "CREATE INDEX runs_by_experiment ON runs (experiment, start_time)",
        "CREATE INDEX runs_by_parent ON runs (parent_id)",
        # value has no declared type, so SQLite keeps INTEGER / REAL / TEXT / NULL as given;
        # vtype says how to read it back (see backend.VTYPE_*).
        """CREATE TABLE metrics (
            run INTEGER NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL, value,
            vtype INTEGER NOT NULL, step INTEGER, time INTEGER NOT NULL,
            from_list INTEGER NOT NULL, description TEXT)""",
        "CREATE INDEX metrics_by_run ON metrics (run)",
        """CREATE TABLE table_rows (
            run INTEGER NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL, cells TEXT NOT NULL,
            time INTEGER NOT NULL, from_table INTEGER NOT NULL, description TEXT)""",
        "CREATE INDEX table_rows_by_run ON table_rows (run)",
        """CREATE TABLE images (
            run INTEGER NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL, file_name TEXT NOT NULL,
            media_type TEXT NOT NULL, time INTEGER NOT NULL, step INTEGER, description TEXT)""",
        "CREATE INDEX images_by_run ON images (run)",
        """CREATE TABLE tags (
            run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, time INTEGER NOT NULL,
            removed INTEGER NOT NULL)""",
        "CREATE INDEX tags_by_run ON tags (run)",
        """CREATE TABLE properties (
            run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT, time INTEGER NOT NULL)""",
        "CREATE INDEX properties_by_run ON properties (run)",
        """CREATE TABLE files (
            run INTEGER NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
            time INTEGER NOT NULL)""",
        "CREATE INDEX files_by_run ON files (run)",
    ],
    [  # 1 -> 2: the writer that numbered each stream record (seq is per writer)
        "ALTER TABLE metrics ADD COLUMN writer TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE table_rows ADD COLUMN writer TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE images ADD COLUMN writer TEXT NOT NULL DEFAULT ''",
    ],
    [  # 2 -> 3: metric points packed as columns, one row per written batch (see chunks.py);
        # points of older versions stay in `metrics` and are read from there first
        """CREATE TABLE metric_chunks (
            run INTEGER NOT NULL, n INTEGER NOT NULL, series TEXT NOT NULL, which BLOB,
            seqs BLOB NOT NULL, vals BLOB NOT NULL, steps BLOB NOT NULL, times BLOB NOT NULL,
            extra TEXT)""",
        "CREATE INDEX metric_chunks_by_run ON metric_chunks (run)",
    ],
    [  # 3 -> 4: each run's metric summary, kept by every write (see summary.py; rowid order is
        # first-logged order), filled in for the runs already stored
        """CREATE TABLE metric_summary (
            run INTEGER NOT NULL, name TEXT NOT NULL, last, min, max,
            last_time INTEGER NOT NULL, last_writer TEXT NOT NULL, last_seq INTEGER NOT NULL,
            UNIQUE (run, name))""",
        _backfill_summary,
    ],
    [  # 4 -> 5: a chunk none of whose points has a step says so ("N" in its extra JSON) and
        # stores an empty steps array (chunks.py); nothing stored changes, but a runbridge that
        # predates it would read those steps as 0, so it must refuse the store
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def check_version(conn: sqlite3.Connection) -> int:
    """The database's schema version; an error if this runbridge is too old to read it."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"this runs database has schema version {current}, newer than this runbridge "
            f"understands ({SCHEMA_VERSION}): upgrade runbridge"
        )
    return current


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to `SCHEMA_VERSION`, one transaction per step."""
    current = check_version(conn)
    for version in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] != version:
                conn.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[version]:
                if callable(statement):
                    statement(conn)
                else:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

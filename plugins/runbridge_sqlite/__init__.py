"""The built-in SQLite backend (stdlib sqlite3 only): runbridge's default store."""
from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]

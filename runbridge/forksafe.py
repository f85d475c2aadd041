"""Locks held across ``fork()``, for backends whose library keeps per-process state.

SQLite keeps one set of lock books per process for each database file, shared by all of that
process's connections. A child forked while a thread of its parent was inside a write transaction
inherits books that say "this process holds the write lock", so the child's own, fresh
connections (a forked child opens its own backends) find the database locked and every write
fails, ending in the spool: a data-parallel rank's points never reach the store. A backend that
takes `guarded_lock()` around each transaction is never forked in the middle of one: whoever
forks the process holds every such lock meanwhile (the wait is at most one transaction).
"""

from __future__ import annotations

import os
import threading
import weakref

_LOCKS: "weakref.WeakSet[threading.RLock]" = weakref.WeakSet()
_HELD: list = []


def guarded_lock() -> "threading.RLock":
    """A re-entrant lock that is also held by whoever forks this process, until the fork is done."""
    lock = threading.RLock()
    _LOCKS.add(lock)
    return lock


def _before_fork() -> None:
    for lock in list(_LOCKS):
        lock.acquire()
        _HELD.append(lock)


def _after_fork() -> None:
    while _HELD:
        _HELD.pop().release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)

"""The bounded write buffer between the front end and the backends.

Logging calls append to a run's buffer (a plain tuple for a scalar, the cheapest thing to make);
the buffer is written to every backend as one batch when it holds `MAX_PENDING` records, at most
`FLUSH_INTERVAL` seconds after a call (one background thread for the process), on every read,
`flush()`, end of the run, and at interpreter exit. Memory stays bounded by `MAX_PENDING`.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Callable, Sequence

from .records import Metric, Record

MAX_PENDING = 10_000
FLUSH_INTERVAL = 0.5

_new = tuple.__new__


class WriteBuffer:
    """Pending records of one run, written in order through `sink` (one batch at a time)."""

    __slots__ = ("_pending", "_lock", "_flush_lock", "_sink", "__weakref__")

    def __init__(self, sink: Callable[[Sequence[Record]], None]):
        self._pending: list = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one batch in flight per run keeps the order
        self._sink = sink
        _ALL_BUFFERS.add(self)

    def add_scalar(self, entry: tuple) -> None:
        """Queue a Metric given as its plain field tuple (the hot path of `run.log`)."""
        with self._lock:
            pending = self._pending
            pending.append(entry)
            full = len(pending) >= MAX_PENDING
            first = len(pending) == 1
        if first:
            _FLUSHER.watch(self)
        if full:
            self.flush()

    def add(self, records: Sequence[Record]) -> None:
        """Queue typed records."""
        with self._lock:
            first = not self._pending
            self._pending.extend(records)
            full = len(self._pending) >= MAX_PENDING
        if first:
            _FLUSHER.watch(self)
        if full:
            self.flush()

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self, then: Sequence[Record] = ()) -> None:
        """Write everything pending (and then `then`, in the same order) to the sink."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                self._sink([_new(Metric, r) if type(r) is tuple else r for r in batch])
            if then:
                self._sink(list(then))


class _Flusher:
    """One daemon thread that flushes every non-empty buffer at most FLUSH_INTERVAL after a call."""

    def __init__(self) -> None:
        self._buffers: set[WriteBuffer] = set()  # strong: a dropped Run still gets flushed
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, buffer: WriteBuffer) -> None:
        with self._lock:
            self._buffers.add(buffer)
            if self._thread is None or not self._thread.is_alive():
                _install_multiprocessing_exit()
                self._thread = threading.Thread(target=self._loop, name="runbridge-flusher", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._wake.wait(FLUSH_INTERVAL):
            self.flush_all()

    def flush_all(self) -> None:
        with self._lock:
            buffers = list(self._buffers)
            self._buffers.clear()
        for buffer in buffers:
            if len(buffer):
                buffer.flush()


_FLUSHER = _Flusher()
# Every live buffer, so exit can wait for a batch in flight and a forked child can empty its copies.
_ALL_BUFFERS: "weakref.WeakSet[WriteBuffer]" = weakref.WeakSet()

# Runs this process owns and has not ended (run cores): at exit they are flushed and ended.
_UNENDED: dict[int, object] = {}
_EXIT_LOCK = threading.Lock()


def track_unended(run: object) -> None:
    _UNENDED[id(run)] = run


def untrack(run: object) -> None:
    _UNENDED.pop(id(run), None)


@atexit.register
def _at_exit() -> None:
    with _EXIT_LOCK:
        _FLUSHER.flush_all()
        for run in list(_UNENDED.values()):
            try:
                run.end_at_exit()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - never mask the interpreter's own exit
                pass
        _FLUSHER.flush_all()
        for buffer in list(_ALL_BUFFERS):  # waits for a batch the flusher thread has in flight
            try:
                buffer.flush()
            except Exception:  # noqa: BLE001
                pass


# -- several processes, one run ------------------------------------------------------------------
# A forked child (multiprocessing "fork", os.fork) inherits copies of the parent's buffers: what
# they hold is the parent's to write, so the child empties them (no record is written twice) and
# takes fresh locks (a copied lock may be held forever). Runs the parent started are the parent's
# to end. multiprocessing children leave with os._exit, which skips atexit, so the exit flush is
# also registered as a multiprocessing finalizer (run by every multiprocessing child at its end).
# A worker killed by a signal (Pool.terminate(), which `with Pool()` calls on exit, sends SIGTERM)
# runs neither: what it logged in its last FLUSH_INTERVAL may be lost. Use pool.close() and
# pool.join(), or run.flush() at the end of each task. (A Python SIGTERM handler was tried: it can
# miss a signal that lands just before the worker blocks on the pool's queue lock, hanging it.)
class _Anchor:
    """A weak-referenceable object that keeps the multiprocessing after-fork entry alive."""


_MP_ANCHOR = _Anchor()
_MP_INSTALLED = False


def _install_multiprocessing_exit(_anchor: object = None) -> None:
    """Register the exit flush with multiprocessing (its children skip atexit), once per process."""
    global _MP_INSTALLED
    if _MP_INSTALLED and _anchor is None:
        return
    from multiprocessing import util

    util.Finalize(None, _at_exit, exitpriority=100)
    if not _MP_INSTALLED:  # the after-fork entry is inherited by forked children
        util.register_after_fork(_MP_ANCHOR, _install_multiprocessing_exit)
    _MP_INSTALLED = True


def _after_fork_in_child() -> None:
    global _EXIT_LOCK
    _FLUSHER.__init__()  # type: ignore[misc]
    for buffer in list(_ALL_BUFFERS):
        buffer._pending = []
        buffer._lock = threading.Lock()
        buffer._flush_lock = threading.Lock()
    _UNENDED.clear()
    _EXIT_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

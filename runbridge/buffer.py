"""The write buffer between the front end and the backends, written by one background thread.

Logging calls append to a run's buffer (a plain tuple for a scalar, the cheapest thing to make);
one writer thread per process writes each buffer to every backend as one batch, when
`MAX_PENDING` records are pending or `FLUSH_INTERVAL` seconds after a call. The script's thread
never writes: `flush()` (called by reads, `run.flush()`, the end of a run and interpreter exit)
asks the writer and waits for it, so a Ctrl-C that lands in the wait leaves the batch in flight
to finish. Back-pressure: a logging call waits for the writer when `MAX_BACKLOG` records are
pending, so memory stays bounded (`MAX_BACKLOG` pending plus the batch in flight) when a backend
is slower than the script.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import gc
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Callable, Iterator

from .liveness import Beats
from .batch import Batch
from .records import Record

MAX_PENDING = 10_000
MAX_BACKLOG = 50_000
FLUSH_INTERVAL = 0.5


class WriteBuffer:
    """Pending records of one run, written in order through `sink` (one batch at a time)."""

    __slots__ = ("_pending", "_flush_lock", "_sink", "__weakref__")

    # No lock on the hot path: callers only append to `_pending` and the writer only removes the
    # prefix it takes (`del pending[:n]`); each is one atomic list operation under the GIL, so an
    # entry appended while a batch is taken stays for the next one, in order.
    def __init__(self, sink: Callable[[Sequence[Record]], None]):
        self._pending: list = []
        self._flush_lock = threading.Lock()  # one batch in flight per run keeps the order
        self._sink = sink
        _ALL_BUFFERS.add(self)

    def add_scalar(self, entry: tuple) -> None:
        """Queue a Metric given as its plain field tuple (the hot path of `run.log`)."""
        pending = self._pending
        pending.append(entry)
        n = len(pending)
        if n == 1:
            _WRITER.watch(self)
        elif n >= MAX_PENDING:
            if n == MAX_PENDING:
                _WRITER.wake()
            elif n >= MAX_BACKLOG:
                self.flush()  # back-pressure: the backends are slower than the script

    def add(self, records: Sequence[Record], wake: bool = False) -> None:
        """Queue records (typed, or plain Metric field tuples); `wake`: write them soon, not
        within FLUSH_INTERVAL."""
        pending = self._pending
        before = len(pending)
        pending.extend(records)
        n = len(pending)
        if before == 0 and n:
            _WRITER.watch(self)
        if n >= MAX_BACKLOG:
            self.flush()
        elif wake or n >= MAX_PENDING:
            _WRITER.wake()

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self, then: Sequence[Record] = ()) -> None:
        """Write everything pending (and then `then`, in the same order) and wait until written."""
        if then:
            self._pending.extend(then)
        _WRITER.write_and_wait(self)

    def _write_pending(self) -> None:
        """Take everything pending and write it (on the writer thread, or inline as a fallback)."""
        with self._flush_lock:
            pending = self._pending
            n = len(pending)
            if n:
                batch = pending[:n]
                del pending[:n]  # what was appended since stays, after it
                with young_collections_deferred(n):
                    self._sink(Batch(batch))


@contextlib.contextmanager
def young_collections_deferred(records: int) -> Iterator[None]:
    """Raise the collector's first threshold while the writer hands a batch of `records` to the
    backends, so the records a backend builds from it die before a young collection sees them:
    otherwise they survive into the old generations and make the collector run full passes over
    the script's whole heap (18 in 1,000,000 `run.log` calls, against 1). The collector keeps
    running (every that many allocations), so a backend that hangs never stops it. The previous
    threshold comes back after, unless someone changed it meanwhile."""
    first, *older = gc.get_threshold()
    deferred = max(first, 2 * records + 10_000) if first else 0
    gc.set_threshold(deferred, *older)
    try:
        yield
    finally:
        if gc.get_threshold()[0] == deferred:
            gc.set_threshold(first, *older)


# The script's thread hands work to the writer and waits on plain locks, never on
# threading.Event/Condition: their Python-level code can be cut by a Ctrl-C or SIGTERM between
# taking their inner lock and the `with` that releases it, leaving the writer blocked for good.
class _Request:
    __slots__ = ("buffer", "done", "error")

    def __init__(self, buffer: WriteBuffer):
        self.buffer = buffer
        self.done = threading.Lock()  # held until the writer has written the buffer
        self.done.acquire()
        self.error: BaseException | None = None


class _Wake:
    """A binary semaphore on a plain lock: `set` from any thread, `wait` by the writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already set
            pass

    def wait(self, timeout: float) -> None:
        self._lock.acquire(timeout=timeout)  # re-armed when it returns by a set


class _Writer:
    """The one thread that writes buffers: asked-for flushes first, then every watched buffer."""

    def __init__(self) -> None:
        self._buffers: set[WriteBuffer] = set()  # strong: a dropped Run still gets written
        self._requests: collections.deque[_Request] = collections.deque()
        self._lock = threading.Lock()
        self._wake = _Wake()
        self._thread: threading.Thread | None = None
        self.ticks: list[Callable[[], None]] = []  # called by the writer about once a FLUSH_INTERVAL

    def _ensure_thread(self) -> bool:
        """Start the writer if needed; False when no thread can run (interpreter shutdown)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return True
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                _install_multiprocessing_exit()
                thread = threading.Thread(target=self._loop, name="runbridge-writer", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    return False
                self._thread = thread
        return True

    def watch(self, buffer: WriteBuffer) -> None:
        with self._lock:
            self._buffers.add(buffer)
        self._ensure_thread()

    def wake(self) -> None:
        self._wake.set()

    def write_and_wait(self, buffer: WriteBuffer) -> None:
        """Have the writer write `buffer` now and wait; inline on the writer itself or when no
        writer thread can run."""
        if threading.current_thread() is self._thread or not self._ensure_thread():
            buffer._write_pending()
            return
        request = _Request(buffer)
        self._requests.append(request)
        self._wake.set()
        while not request.done.acquire(timeout=1.0):
            if not (self._thread is not None and self._thread.is_alive()):  # it died: write here
                buffer._write_pending()
                return
        if request.error is not None:
            raise request.error

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._serve_requests()
            with self._lock:
                buffers = list(self._buffers)
                self._buffers.clear()
            # a buffer two threads filled at once may have missed its `watch`: sweep it too
            taken = set(buffers)
            buffers += [b for b in list(_ALL_BUFFERS) if len(b) and b not in taken]
            for buffer in buffers:
                self._serve_requests()  # an asked-for flush does not wait behind the sweep
                try:
                    buffer._write_pending()
                except Exception:  # noqa: BLE001 - the writer must outlive a failing batch
                    pass
            for tick in list(self.ticks):
                try:
                    tick()
                except Exception:  # noqa: BLE001
                    pass
            # Hold no run while waiting: at exit, a run (and its workspace) only this daemon
            # thread still referenced would never be freed, leaving SQLite's -wal/-shm behind.
            buffers = buffer = None  # type: ignore[assignment]

    def _serve_requests(self) -> None:
        while self._requests:
            request = self._requests.popleft()
            try:
                request.buffer._write_pending()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                request.error = exc
            request.done.release()

    def write_all(self) -> None:
        """Write every buffer now and wait (exit, signals)."""
        for buffer in list(_ALL_BUFFERS):
            if len(buffer):
                self.write_and_wait(buffer)


_WRITER = _Writer()
# Every live buffer, so exit can write them all and a forked child can empty its copies.
_ALL_BUFFERS: "weakref.WeakSet[WriteBuffer]" = weakref.WeakSet()

# Runs this process owns and has not ended (run cores): at exit they are flushed and ended.
_UNENDED: dict[int, object] = {}
_EXIT_LOCK = threading.Lock()


def track_unended(run: object) -> None:
    _UNENDED[id(run)] = run
    from .signals import install_sigterm

    install_sigterm()


def untrack(run: object) -> None:
    _UNENDED.pop(id(run), None)


def unended() -> list:
    """Runs this process owns and has not ended (run cores)."""
    return list(_UNENDED.values())


_WRITER.ticks.append(Beats(unended))  # the heartbeats of this process's unended runs


@atexit.register
def _at_exit() -> None:
    from .signals import exit_as_signalled, exiting

    exiting()
    with _EXIT_LOCK:
        _WRITER.write_all()
        for run in list(_UNENDED.values()):
            try:
                run.end_at_exit()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - never mask the interpreter's own exit
                pass
        for buffer in list(_ALL_BUFFERS):  # also waits for a batch the writer has in flight
            try:
                _WRITER.write_and_wait(buffer)
            except Exception:  # noqa: BLE001
                pass
    exit_as_signalled()


# -- several processes, one run ------------------------------------------------------------------
# A forked child (multiprocessing "fork", os.fork) inherits copies of the parent's buffers: what
# they hold is the parent's to write, so the child empties them (no record is written twice) and
# takes fresh locks (a copied lock may be held forever); the writer thread is not copied, a new
# one starts on the child's first write. Runs the parent started are the parent's to end.
# multiprocessing children leave with os._exit, which skips atexit, so the exit flush is also
# registered as a multiprocessing finalizer (run by every multiprocessing child at its end).
# A worker killed by a signal (Pool.terminate(), which `with Pool()` calls on exit, sends SIGTERM)
# runs neither: what it logged in its last FLUSH_INTERVAL may be lost. Use pool.close() and
# pool.join(), or run.flush() at the end of each task. (No SIGTERM handler is installed in
# multiprocessing children: it can miss a signal that lands just before a pool worker blocks on
# the pool's queue lock, hanging it.)
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
    ticks = _WRITER.ticks
    _WRITER.__init__()  # type: ignore[misc]
    _WRITER.ticks = ticks
    for buffer in list(_ALL_BUFFERS):
        buffer._pending = []
        buffer._flush_lock = threading.Lock()
    _UNENDED.clear()
    _EXIT_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""The bounded write buffer between the front end and the backends.

Logging calls append to a run's buffer (a plain tuple for a scalar, the cheapest thing to make);
the buffer is written to every backend as one batch when it holds `MAX_PENDING` records, at most
`FLUSH_INTERVAL` seconds after a call (one background thread for the process), on every read,
`flush()`, end of the run, and at interpreter exit. Memory stays bounded by `MAX_PENDING`.
"""

from __future__ import annotations

import atexit
import threading
from typing import Callable, Sequence

from .records import Metric, Record

MAX_PENDING = 10_000
FLUSH_INTERVAL = 0.5

_new = tuple.__new__


class WriteBuffer:
    """Pending records of one run, written in order through `sink` (one batch at a time)."""

    __slots__ = ("_pending", "_lock", "_flush_lock", "_sink")

    def __init__(self, sink: Callable[[Sequence[Record]], None]):
        self._pending: list = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one batch in flight per run keeps the order
        self._sink = sink

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

# Runs started in this process and not yet ended: at exit they are flushed and ended.
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
                run._end_at_exit()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - never mask the interpreter's own exit
                pass
        _FLUSHER.flush_all()

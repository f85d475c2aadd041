"""MLflow's native metric history, sent behind the exact stream by a thread of its own.

With an http(s) tracking server, `write` returns once a batch's exact stream chunk is stored
(reads come from it, exactly); the batch's scalar points are queued here and a background thread
translates them and sends them with ``log_batch``, lagging behind the script as far as the
server's pace makes it. An MLflow server ingests a few thousand native points a second, far
fewer than a training loop logs, so without this the script would wait for the server.

The exact stream goes first: the thread does not post while the backend uploads a stream chunk,
nor within `QUIET` seconds after one, so that when the script logs faster than the server takes
points (writes back to back) the server serves the uploads the script waits for, and the native
history follows once the writes pause (or when the run ends). A script logging at a few thousand
points a second writes twice a second and leaves the thread the time in between. The thread
yields for at most `MAX_YIELD` seconds at a time: under writes that never pause, the history
still moves on by a send every couple of seconds.

Memory stays bounded: when more than `limit` points wait in memory, later batches wait in a
spill file instead (a private temporary file, pickled), in order, and the thread sends them from
there once memory is free again: a million points logged faster than the server takes them cost
the script neither memory nor a wait, and nothing has to be compared with the server afterwards.
A run is marked *behind* when a send fails (or a wait for it times out); when the run ends
(`drain`, called by the backend's ``end_run``) the backend gives MLflow's native history every
stream point it lacks (``reconcile``, matched by (name, step, value): never duplicated). A process that logs to a run
another process ends (a data-parallel rank) waits for its mirror when it exits, reconciling its
runs that are behind, and sends what its last flushes write at exit in the writing thread itself.
A process killed before that leaves the native history short, never the exact stream;
``runbridge sync`` completes it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import tempfile
import threading
import time
import weakref
from collections import deque
from typing import Callable, Iterator

#: Points that may wait in memory; later batches wait in the spill file.
DEFAULT_LIMIT = 200_000
LIMIT_ENV = "RUNBRIDGE_MLFLOW_MIRROR_LIMIT"
#: Seconds after a stream upload before the thread posts (the next upload of a script logging
#: back to back starts sooner).
QUIET = 0.05
#: The longest the thread waits for a pause in the uploads before it sends anyway (seconds).
MAX_YIELD = 2.0
#: Points per send (MLflow's log-batch limit): the thread checks for stream uploads between sends.
PART = 1000


def limit_from_env() -> int:
    """The queue limit: `RUNBRIDGE_MLFLOW_MIRROR_LIMIT` points, else `DEFAULT_LIMIT`."""
    try:
        return max(0, int(os.environ.get(LIMIT_ENV, DEFAULT_LIMIT)))
    except ValueError:
        return DEFAULT_LIMIT


class Mirror:
    """A queue of (run key, points) and the daemon thread that sends them with `send(key, points)`.

    `send` raising marks the run behind (reconciled at its end). Batches beyond `limit` points in
    memory wait in a spill file, in order, until the ones before them are sent."""

    def __init__(self, send: Callable[[object, list], None], limit: int | None = None,
                 on_behind: Callable[[object], None] | None = None):
        self._send = send
        self._on_behind = on_behind  # reconciles a run that is behind when the process exits
        self._inline = False  # at exit: `put` sends in the calling thread
        self.limit = limit_from_env() if limit is None else limit
        self._queue: deque[tuple[object, list]] = deque()
        #: (run key, offset, size) of batches waiting in the spill file, after those in `_queue`.
        self._spilled: deque[tuple[object, int, int]] = deque()
        self._spill: "tempfile._TemporaryFileWrapper | None" = None
        self._spill_end = 0
        self.spilled = 0  # batches that ever waited in the spill file (tests check it is used)
        self.queued = 0  # points waiting (not the batch in flight)
        self.peak = 0  # the most points that ever waited (tests check the bound)
        self._in_flight: object | None = None
        self._streaming = 0  # stream uploads in progress (`streaming`)
        self._quiet_at = 0.0  # monotonic time from which the thread may post
        self._behind: set = set()
        self._errors: dict = {}  # run key -> the last send error
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def put(self, key: object, points: list) -> None:
        """Queue a batch's points for run `key`: in memory up to `limit` points, else in the spill file."""
        if not points:
            return
        if self._inline:
            try:
                self._send(key, points)
            except Exception:  # noqa: BLE001 - the run's end (or runbridge sync) reconciles it
                with self._cond:
                    self._behind.add(key)
            return
        with self._cond:
            self._forget_parent()
            _register_exit(self)
            if self._spilled or self.queued + len(points) > self.limit:
                self._spill_batch(key, points)
            else:
                self._queue.extend(_parts(key, points))
                self.queued += len(points)
                self.peak = max(self.peak, self.queued)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="runbridge-mlflow-mirror", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """Around a stream upload: the thread posts nothing meanwhile nor `QUIET` seconds after."""
        with self._cond:
            self._forget_parent()
            self._streaming += 1
        try:
            yield
        finally:
            with self._cond:
                self._streaming -= 1
                self._quiet_at = time.monotonic() + QUIET
                self._cond.notify_all()

    def _forget_parent(self) -> None:
        """In a forked child (under the lock): the parent's thread, queue, uploads in progress
        and marks are not this process's."""
        if self._pid == os.getpid():
            return
        self._queue.clear()
        self._spilled.clear()
        self._spill = None
        self._spill_end = 0
        self.queued = 0
        self._in_flight = None
        self._streaming = 0
        self._thread = None
        self._pid = os.getpid()
        self._behind.clear()

    def _wait_for_quiet(self) -> None:
        """Wait (under the lock) until no stream upload is in progress or just ended, at most
        `MAX_YIELD` seconds."""
        deadline = time.monotonic() + MAX_YIELD
        while True:
            now = time.monotonic()
            until = deadline if self._streaming else min(self._quiet_at, deadline)
            if until <= now:
                return
            self._cond.wait(until - now)

    def _spill_batch(self, key: object, points: list) -> None:
        """Append a batch to the spill file (under the lock): it waits there, in order."""
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="runbridge-mlflow-mirror-")
            self._spill_end = 0
        data = pickle.dumps(points, protocol=pickle.HIGHEST_PROTOCOL)
        os.pwrite(self._spill.fileno(), data, self._spill_end)
        self._spilled.append((key, self._spill_end, len(data)))
        self._spill_end += len(data)
        self.spilled += 1

    def _next(self) -> tuple[object, list]:
        """The next batch to send (under the lock): from memory, else from the spill file."""
        if self._queue:
            key, points = self._queue.popleft()
            self.queued -= len(points)
            return key, points
        key, offset, size = self._spilled.popleft()
        assert self._spill is not None
        points = pickle.loads(os.pread(self._spill.fileno(), size, offset))
        if not self._spilled:  # everything read back: the file starts over
            self._spill.truncate(0)
            self._spill_end = 0
        first, *rest = _parts(key, points)
        self._queue.extendleft(reversed(rest))  # before the batches still spilled, in order
        self.queued += len(points) - len(first[1])
        return first

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._spilled:
                    self._cond.wait()
                self._wait_for_quiet()
                key, points = self._next()
                self._in_flight = key
                failed = key in self._errors  # one failed send: the rest of the run is reconciled
            try:
                if not failed:  # (no retries per batch against a server that is down)
                    self._send(key, points)
            except Exception as exc:  # noqa: BLE001 - reconciled from the stream when the run ends
                with self._cond:
                    self._behind.add(key)
                    self._errors[key] = exc
            finally:
                with self._cond:
                    self._in_flight = None
                    if not self._queue and not self._spilled:  # the backlog is gone: try again
                        self._errors.clear()
                    self._cond.notify_all()

    def drain(self, key: object, timeout: float | None = None) -> bool:
        """Wait until nothing of run `key` waits or is in flight; True if the run is behind (a send
        failed, or the wait timed out): reconcile it. Clears the mark."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._in_flight != key and all(k != key for k, _ in self._queue)
                and all(k != key for k, _, _ in self._spilled), timeout)
            if not done:  # give up waiting: what waits is reconciled instead
                self._remove(key)
            behind = key in self._behind or not done
            self._behind.discard(key)
            self._errors.pop(key, None)
            return behind

    def _remove(self, key: object) -> None:
        """Drop every batch of run `key` that waits, in memory or spilled (under the lock)."""
        kept = [(k, p) for k, p in self._queue if k != key]
        self._queue = deque(kept)
        self.queued = sum(len(p) for _, p in kept)
        self._spilled = deque(entry for entry in self._spilled if entry[0] != key)

    def close(self) -> None:
        """At exit: wait for everything queued, send later batches inline, and reconcile the runs
        that are behind (a run this process does not end would otherwise stay short)."""
        with self._cond:
            if self._pid != os.getpid():
                return
            self._inline = True
            self._cond.wait_for(lambda: not self._queue and not self._spilled and self._in_flight is None)
            behind = list(self._behind)
        for key in behind:
            if self._on_behind is None:
                continue
            try:
                self._on_behind(key)
            except Exception:  # noqa: BLE001 - never mask the exit; runbridge sync repairs it
                continue
            with self._cond:
                self._behind.discard(key)


def _parts(key: object, points: list) -> list[tuple[object, list]]:
    """A batch as sends of at most `PART` points."""
    if len(points) <= PART:
        return [(key, points)]
    return [(key, points[i:i + PART]) for i in range(0, len(points), PART)]


_MIRRORS: "weakref.WeakSet[Mirror]" = weakref.WeakSet()
_REGISTERED_PID = 0


def _close_all() -> None:
    for mirror in list(_MIRRORS):
        mirror.close()


def _register_exit(mirror: Mirror) -> None:
    """Close `mirror` when this process exits. Registered after runbridge's exit flush, so it runs
    before it (atexit is last in, first out): that flush's writes are then sent inline. Also a
    multiprocessing finalizer (its children leave with os._exit), before runbridge's (priority 100)."""
    global _REGISTERED_PID
    _MIRRORS.add(mirror)
    if _REGISTERED_PID == os.getpid():
        return
    _REGISTERED_PID = os.getpid()
    atexit.register(_close_all)
    from multiprocessing import util

    util.Finalize(None, _close_all, exitpriority=200)

"""Heartbeats: a run whose process died without ending it (kill -9, power loss) is not shown
Running forever.

While a process has runs it started and not ended, its writer thread sets the reserved tag
`HEARTBEAT_TAG` (unix seconds) on each of them every `HEARTBEAT_S` seconds, and once at start.
A reader that finds a run Running whose last heartbeat is older than the stale time
(``RUNBRIDGE_STALE_AFTER`` seconds, default `STALE_AFTER_S`) reports it Failed, with an error
saying the writing process stopped without ending it (killed?). Nothing is written by the reader:
the store keeps the run Running, with everything the process wrote before it died. A run without
a heartbeat (written by an older version, or by another tool) is taken as it is stored.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from .records import RESERVED_PREFIX, RUNNING, Record, RunInfo, Tag, now_us

HEARTBEAT_TAG = RESERVED_PREFIX + "heartbeat"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0
ENV_STALE_AFTER = "RUNBRIDGE_STALE_AFTER"


def stale_after() -> float:
    """Seconds without a heartbeat after which a Running run is presumed dead."""
    try:
        return float(os.environ.get(ENV_STALE_AFTER) or STALE_AFTER_S)
    except ValueError:
        return STALE_AFTER_S


def heartbeat() -> Tag:
    """The heartbeat record for now."""
    return Tag(HEARTBEAT_TAG, str(int(time.time())), now_us())


def last_heartbeat(records: Sequence[Record]) -> float | None:
    """Unix seconds of a run's last heartbeat, or None."""
    last = None
    for rec in records:
        if type(rec) is Tag and rec.key == HEARTBEAT_TAG and rec.value and not rec.removed:
            try:
                last = float(rec.value)
            except ValueError:
                continue
    return last


def presumed_dead(info: RunInfo, records: Sequence[Record], now: float | None = None) -> str | None:
    """Why a Running run is presumed dead (its heartbeat is stale), or None."""
    if info.status != RUNNING:
        return None
    last = last_heartbeat(records)
    if last is None:
        return None
    now = time.time() if now is None else now
    if now - last <= stale_after():
        return None
    when = datetime.fromtimestamp(last, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f"the process writing this run stopped without ending it (killed?): no heartbeat since {when}, "
            f"{now - last:.0f} s ago; what it wrote before is kept")


class Beats:
    """Sets the heartbeat of this process's unended runs at most every HEARTBEAT_S (a writer tick).
    `runs` gives those runs (run cores: each has a `buffer`)."""

    def __init__(self, runs: Callable[[], Iterable[Any]]) -> None:
        self._runs = runs
        self._last = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last < HEARTBEAT_S:
            return
        self._last = now
        for run in self._runs():
            run.buffer.add([heartbeat()])

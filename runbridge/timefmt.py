"""Run times as text: ISO timestamps for `get_details`, short UTC times and durations for people
(the CLI tables, `wait_for_completion`'s summary). Times are integer microseconds (UTC)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from .records import FINAL_STATUSES, RunInfo


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)


def iso_utc(us: int | None) -> str | None:
    """``2024-05-01T12:00:00.123456Z`` (azureml's `startTimeUtc` form), None for None."""
    return None if us is None else _utc(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_utc(us: int | None) -> str:
    """``2024-05-01 12:00:00`` to the second, for tables; ``-`` for no time."""
    return "-" if us is None else _utc(us).strftime("%Y-%m-%d %H:%M:%S")


def duration(info: RunInfo) -> str:
    """How long the run took (``4.2s``, ``3m05s``, ``2h07m``), so far with ``+`` while it is
    Running; ``-`` when the times do not say."""
    if not info.start_time:
        return "-"
    end = info.end_time if info.end_time is not None else (
        None if info.status in FINAL_STATUSES else time.time_ns() // 1000)
    if end is None:
        return "-"
    seconds = max(0.0, (end - info.start_time) / 1e6)
    if seconds < 60:
        text = f"{seconds:.1f}s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    else:
        text = f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return text if info.end_time is not None else text + "+"

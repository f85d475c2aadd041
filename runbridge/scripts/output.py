"""The supervisor's handling of a script's output: teeing its pipes into the log (and the
terminal), keeping stderr's tail, and the error text of a script that failed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import IO

STDERR_TAIL_LINES = 20
_TAIL_BYTES = 16384


def _pump(source: IO[bytes], sink: IO[bytes], lock: threading.Lock, echo: IO[bytes] | None,
          tail: bytearray | None) -> None:
    """Copy a pipe into the log as it comes (and to the terminal, and keep stderr's tail)."""
    fd = source.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        with lock:
            sink.write(data)
            sink.flush()
        if echo is not None:
            try:
                echo.write(data)
                echo.flush()
            except (OSError, ValueError):
                pass
        if tail is not None:
            tail.extend(data)
            del tail[:-_TAIL_BYTES]


class Tee:
    """Two threads copying a child's stdout and stderr into `log` as they come."""

    def __init__(self, child: subprocess.Popen, log: IO[bytes], echo_out: IO[bytes] | None,
                 echo_err: IO[bytes] | None):
        self.stderr_tail = bytearray()
        lock = threading.Lock()
        self._threads = [
            threading.Thread(target=_pump, args=(child.stdout, log, lock, echo_out, None), daemon=True),
            threading.Thread(target=_pump, args=(child.stderr, log, lock, echo_err, self.stderr_tail), daemon=True)]
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float = 10) -> None:
        """Wait for the pipes to close; a daemon the script left behind may keep them open: don't hang."""
        for thread in self._threads:
            thread.join(timeout=timeout)


def failure_message(script: str, code: int, stderr_tail: bytes) -> str:
    """Why a script failed: its exit code or the signal that killed it, then stderr's last lines."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        head = f"{script} was killed by {name} (signal {-code})"
    else:
        head = f"{script} exited with code {code}"
    lines = stderr_tail.decode("utf-8", errors="replace").rstrip().splitlines()[-STDERR_TAIL_LINES:]
    return head + (":\n" + "\n".join(lines) if lines else "")

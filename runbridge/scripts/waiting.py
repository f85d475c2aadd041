"""`Run.wait_for_completion`: poll a run until it ends, stream its output, and notice a
supervisor that died without ending it (on this machine)."""

from __future__ import annotations

import codecs
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable

from ..errors import RunFailedError
from ..records import COMPLETED, FAILED, FINAL_STATUSES, RUNNING, RunInfo
from ..runcore import RunCore
from ..timefmt import duration
from .names import LOG_PATH_PROPERTY, STD_LOG, SUPERVISOR_PROPERTY
from .submit import SUPERVISOR_CODE, Submission


class _Tail:
    """Prints a run's output from a byte offset: the live local file, then the uploaded log."""

    def __init__(self, core: RunCore, stream: IO[str], log_path: Path | None):
        self.core = core
        self.stream = stream
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        path = log_path if log_path is not None else core.property_value(LOG_PATH_PROPERTY)
        self.path = Path(path) if path else None

    def _emit(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final)
        if text:
            self.stream.write(text)
            self.stream.flush()

    def poll(self) -> None:
        """Print what the live log gained since the last call."""
        if self.path is None:
            return
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        self.offset += len(data)
        self._emit(data)

    def finish(self) -> None:
        """Print the rest from the uploaded ``user_logs/std_log.txt`` (the live file may be gone)."""
        self.poll()
        with tempfile.TemporaryDirectory(prefix="runbridge-log-") as tmp:
            target = Path(tmp) / "std_log.txt"
            data = target.read_bytes() if self.core.fetch_file(STD_LOG, target) else b""
        if len(data) > self.offset:
            self._emit(data[self.offset:])
            self.offset = len(data)
        self._emit(b"", final=True)


class _SupervisorWatch:
    """Whether a run's supervisor still lives: False only when it ran on this machine and its
    process is gone."""

    def __init__(self, core: RunCore):
        self.core = core
        self.ref: str | None = None

    def alive(self) -> bool:
        if not self.ref:  # read until known (it never changes): reading every record per poll is costly
            self.ref = self.core.property_value(SUPERVISOR_PROPERTY)
        if not self.ref:
            return True  # not a submitted run, or the supervisor is still starting: wait on
        host, _, pid_text = self.ref.rpartition(":")
        if host != socket.gethostname() or not pid_text.isdigit():
            return True  # another machine: only the status can tell
        pid = int(pid_text)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():  # a reused pid is another program
            try:
                return SUPERVISOR_CODE.encode() in cmdline.read_bytes()
            except OSError:
                return True
        return True


def _fail_if_running(core: RunCore, why: str) -> RunInfo:
    """End the run Failed for `why` if the backends still say Running; returns the final view."""
    if core.refresh().status == RUNNING:
        core.finish(FAILED, why)
        core.refresh()
    return core.info


def _wait(core: RunCore, sub: Submission | None, tail: _Tail | None) -> RunInfo:
    interval = 0.1 if tail is not None else 0.2
    watch = _SupervisorWatch(core)
    while True:
        if tail is not None:
            tail.poll()
        if sub is not None:
            code = sub.process.poll()
            if code is None:
                time.sleep(interval)
                continue
            return _fail_if_running(core, f"the runbridge supervisor of this run exited with code {code} "
                                          f"before ending it (see {sub.local_dir / 'supervisor.log'})")
        if core.refresh().status in FINAL_STATUSES:
            return core.info
        if not watch.alive():  # it may have ended the run just before exiting: read again
            return _fail_if_running(core, "the runbridge supervisor of this run is gone (killed?) and did not end it")
        time.sleep(max(interval, 0.5))


def wait_for_completion(core: RunCore, details: Callable[[], dict[str, Any]], submission: Submission | None = None,
                        show_output: bool = False, raise_on_error: bool = True,
                        stream: IO[str] | None = None) -> dict[str, Any]:
    """Block until the run ends (polling its status), optionally streaming its output; Ctrl-C stops
    waiting (the run goes on). Returns `details()` (the run's get_details()); raises
    `RunFailedError` if it did not complete and `raise_on_error`."""
    out = stream if stream is not None else sys.stdout
    tail = _Tail(core, out, submission.log_path if submission else None) if show_output else None
    if show_output:
        out.write(f"RunId: {core.id}\n")
        url = core.url()
        if url:
            out.write(f"Web View: {url}\n")
        out.write("\nStreaming user_logs/std_log.txt\n=====================================\n\n")
        out.flush()
    try:
        info = _wait(core, submission, tail)
    except KeyboardInterrupt:
        out.write(f"\nStopped waiting; run {core.id} goes on (wait again with run.wait_for_completion()).\n")
        out.flush()
        raise
    if tail is not None:
        tail.finish()
    result = details()
    error = result.get("error", {}).get("error", {}).get("message")
    if show_output:
        out.write("\nExecution Summary\n=================\n")
        out.write(f"RunId: {core.id}\nStatus: {info.status}\nDuration: {duration(info)}\n")
        url = core.url()
        if url:
            out.write(f"Web View: {url}\n")
        if error:
            out.write(f"Error: {error}\n")
        out.write("\n")
        out.flush()
    if raise_on_error and info.status != COMPLETED:
        raise RunFailedError(f"run {core.id} ended {info.status}" + (f": {error}" if error else ""), result)
    return result

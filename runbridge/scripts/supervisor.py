"""The supervisor process of a submitted run: snapshot, start the script, tee its output, wait
(stopping it if the run is canceled elsewhere), upload outputs/ and the log, end the run. See
`runbridge.scripts` for the whole story."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from ..backendset import BackendSet
from ..media import sha256_of
from ..records import CANCELED, COMPLETED, FAILED, RUNNING, File, Property, Tag, now_us
from ..runcore import ExitPolicy, RunCore
from .environment import script_environment
from .names import EXIT_CODE_TAG, SNAPSHOT_FILE, STD_LOG, SUPERVISOR_PROPERTY
from .output import Tee, failure_message
from .snapshot import make_snapshot

#: How often the supervisor looks for a cancel while the script runs (seconds).
CANCEL_POLL = 2.0


def main() -> None:
    """Entry point of the supervisor process: ``python -c ... <run description>.json``."""
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sys.exit(supervise(spec))


class _Forwarder:
    """The SIGTERM handler: passes the signal on to the script while it runs."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)


def _install_signals() -> _Forwarder:
    # Ctrl-C / hang-up reach the script directly (same process group) or not at all: the
    # supervisor stays to record the end. A handler (not SIG_IGN) is reset to default in the child.
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: None)
    forwarder = _Forwarder()
    signal.signal(signal.SIGTERM, forwarder)
    return forwarder


def _attach(spec: dict[str, Any]) -> RunCore:
    """The submitted run, owned by this process from now on: anything unexpected ends it Failed."""
    core = RunCore.fetch(BackendSet(backends=spec["backends"]), spec["experiment"], spec["run_id"])
    core.own(ExitPolicy.FAIL)
    core.emit([Property(SUPERVISOR_PROPERTY, f"{socket.gethostname()}:{os.getpid()}", now_us())])
    return core


def _snapshot(core: RunCore, spec: dict[str, Any], log: IO[bytes]) -> None:
    """Store the snapshot of source_directory; a problem is logged and never stops the script."""
    try:
        zip_path = Path(spec["local_dir"]) / "snapshot.zip"
        skipped = make_snapshot(Path(spec["source_directory"]), zip_path, spec["backends"])
        if skipped:
            log.write(f"[runbridge] {skipped}\n".encode())
            return
        size, digest = sha256_of(path=zip_path)
        core.emit([File(SNAPSHOT_FILE, size, digest, now_us(), source=str(zip_path))])
    except Exception as exc:  # noqa: BLE001 - a snapshot problem must not stop the script
        log.write(f"[runbridge] the snapshot failed: {type(exc).__name__}: {exc}\n".encode())


def _start_script(spec: dict[str, Any]) -> subprocess.Popen:
    foreground = bool(spec.get("foreground"))
    env = script_environment(spec["run_id"], spec["experiment"], spec["backends"], bool(spec.get("azureml_shim")))
    return subprocess.Popen([sys.executable, spec["script"], *spec["arguments"]], cwd=spec["source_directory"],
                            env=env, stdin=None if foreground else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_script(core: RunCore, child: subprocess.Popen) -> tuple[int, bool]:
    """(exit code, canceled): waits for the script, stopping it (SIGTERM) when the run is
    canceled from another process."""
    canceled = False
    while True:
        try:
            return child.wait(timeout=CANCEL_POLL), canceled
        except subprocess.TimeoutExpired:
            pass
        try:
            if not canceled and core.current_info().status == CANCELED:  # run.cancel() elsewhere
                canceled = True
                child.terminate()
        except Exception:  # noqa: BLE001 - a status read failing must not stop supervising
            pass


def _outputs_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    if not folder.is_dir():
        return {}
    state = {}
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            state[path.relative_to(folder).as_posix()] = (st.st_ctime_ns, st.st_mtime_ns, st.st_size)
    return state


def _upload_results(core: RunCore, outputs: Path, before: dict, log_path: Path) -> None:
    """Upload the files the script wrote or changed in outputs/, then the log."""
    changed = [name for name, st in sorted(_outputs_state(outputs).items()) if before.get(name) != st]
    pairs = [(f"outputs/{name}", outputs / name) for name in changed if f"outputs/{name}" not in core.file_names]
    if pairs:
        try:
            core.upload(pairs)
        except Exception as exc:  # noqa: BLE001 - say so in the log, still end the run
            with open(log_path, "ab") as log:
                log.write(f"[runbridge] uploading outputs/ failed: {type(exc).__name__}: {exc}\n".encode())
    if STD_LOG not in core.file_names:
        core.upload([(STD_LOG, log_path)])


def _end_run(core: RunCore, script: str, code: int, canceled: bool, stderr_tail: bytes) -> None:
    """Record the exit code and end the run: 0 -> Completed (unless the script ended it), a
    cancel -> Canceled, else Failed with the code (or signal) and stderr's last lines."""
    core.emit([Tag(EXIT_CODE_TAG, str(code), now_us())])
    status = core.info.status
    if code == 0 and not canceled:
        if status == RUNNING:
            core.end(COMPLETED)
    elif canceled or status == CANCELED:
        if status != CANCELED:
            core.end(CANCELED)
    else:  # also a script that completed its run itself, then crashed
        core.end(FAILED, failure_message(script, code, stderr_tail))


def supervise(spec: dict[str, Any]) -> int:
    """Run the script bound to the run, capture its output, and end the run; returns the exit code."""
    forwarder = _install_signals()
    core = _attach(spec)
    log_path = Path(spec["log_path"])
    outputs = Path(spec["source_directory"]) / "outputs"
    foreground = bool(spec.get("foreground"))
    with open(log_path, "ab", buffering=0) as log:
        _snapshot(core, spec, log)
        before = _outputs_state(outputs)
        try:
            forwarder.child = child = _start_script(spec)
        except OSError as exc:
            core.finish(FAILED, f"could not start {spec['script']}: {exc}")
            return 127
        tee = Tee(child, log, sys.stdout.buffer if foreground else None, sys.stderr.buffer if foreground else None)
        code, canceled = _wait_for_script(core, child)
        tee.join()
    core.reload()  # the script (or its workers) may have ended the run, tagged it, uploaded files
    _upload_results(core, outputs, before, log_path)
    _end_run(core, spec["script"], code, canceled, bytes(tee.stderr_tail))
    shutil.rmtree(spec["local_dir"], ignore_errors=True)
    return code if code >= 0 else 128 - code

"""Script runs: `ScriptRunConfig`, `Experiment.submit`, `Run.wait_for_completion`, and the
`Run.get_context` hand-off through the environment (docs/api.md, "Script runs").

How a submitted run works
-------------------------
``experiment.submit(config)`` creates the run (Running) and starts a small **supervisor** process
(``python -c "from runbridge.submit import _supervise_main; ..."``) in its own session, then
returns the run at once. The supervisor, not the submitting process, owns the run's end, so the
run still ends properly when the submitting process exits early, is killed, or its user presses
Ctrl-C while waiting. The supervisor:

1. zips a **snapshot** of ``source_directory`` (without ``.git``, ``outputs``, ``__pycache__``,
   virtual environments and the run stores: ``.runbridge`` and every file or folder the configured
   backends own, as their ``store_location`` hook says) into the hidden run file ``runbridge.snapshot.zip``; ``run.restore_snapshot()``
   gives it back. Past 2,000 files or 300 MB (Azure ML's limits) the snapshot is skipped and the
   log says so;
2. starts the script: ``sys.executable SCRIPT ARGS`` with ``cwd=source_directory`` and the
   environment ``RUNBRIDGE_RUN_ID``, ``RUNBRIDGE_EXPERIMENT``, ``RUNBRIDGE_BACKENDS`` (the
   workspace's specs with relative paths made absolute) and ``PYTHONUNBUFFERED=1``, so
   ``Run.get_context()`` in the script, and in every process the script starts, attaches to the run;
3. tees the script's stdout and stderr, as they come, into a local log file (its path is in
   ``run.get_details()["logFiles"]["user_logs/std_log.txt"]`` while the run is Running, and
   ``run.wait_for_completion(show_output=True)`` streams it, from any process on this machine);
4. when the script ends: uploads the files the script wrote or changed in ``outputs/`` during
   the run (files left there by earlier runs are not uploaded again), uploads the log as the run
   file ``user_logs/std_log.txt``, and ends the run: exit 0 -> Completed (unless the script
   itself failed or canceled its run), non-zero -> Failed with the exit code and the last lines
   of stderr as the error, killed by a signal -> Failed naming the signal. ``run.cancel()`` from
   any process stops the script (SIGTERM) and leaves the run Canceled.

``runbridge run SCRIPT ARGS`` is the same thing in the foreground: the supervisor stays in the
terminal's process group (Ctrl-C reaches the script as with ``python SCRIPT``), echoes the
output, and its exit code is the script's; ``azureml.core`` resolves to runbridge in the script
when the real Azure ML SDK is not installed (the shim in ``runbridge/_azureml_shim``).
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator, Sequence

from .backends import absolute_spec, locate
from .config import ENV_BACKENDS
from .errors import RunFailedError
from .records import CANCELED, COMPLETED, FAILED, FINAL_STATUSES, RESERVED_PREFIX, RUNNING, File, Property, RunInfo, Tag, now_us
from .timefmt import duration

if TYPE_CHECKING:
    from .experiment import Experiment
    from .run import Run

ENV_RUN_ID = "RUNBRIDGE_RUN_ID"
ENV_EXPERIMENT = "RUNBRIDGE_EXPERIMENT"
STD_LOG = "user_logs/std_log.txt"
SNAPSHOT_FILE = RESERVED_PREFIX + "snapshot.zip"
#: Reserved property: the local file the running script's output is teed into.
LOG_PATH_PROPERTY = RESERVED_PREFIX + "log_path"
#: Reserved property: ``<host>:<pid>`` of the supervisor, so a waiter elsewhere sees it die.
SUPERVISOR_PROPERTY = RESERVED_PREFIX + "supervisor"
#: Reserved tag: the script's exit code (a negative number: killed by that signal).
EXIT_CODE_TAG = RESERVED_PREFIX + "exit_code"
#: Folder names never put in a snapshot (besides virtual environments and the stores in use).
SNAPSHOT_EXCLUDED = frozenset({".git", ".hg", ".svn", "outputs", "__pycache__", ".runbridge", ".ipynb_checkpoints", ".venv", ".mypy_cache",
                               ".pytest_cache", ".tox", "node_modules"})
SNAPSHOT_MAX_FILES = 2000
SNAPSHOT_MAX_BYTES = 300 * 1024 * 1024
STDERR_TAIL_LINES = 20
SHIM_DIR = Path(__file__).with_name("_azureml_shim")


# -- configuration objects -----------------------------------------------------------------------
class _Settings:
    """Accepts any attribute chain (``src.run_config.environment.python.x = 1``) and ignores it:
    Azure-only configuration that a local run does not need."""

    def __init__(self, **values: Any):
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _Settings()
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"<settings {sorted(self.__dict__)} (ignored by runbridge)>"


class Environment(_Settings):
    """azureml ``Environment``: accepted and ignored; the script runs with this Python."""

    def __init__(self, name: str = "runbridge-local", *args: Any, **kwargs: Any):
        super().__init__(name=name)

    @classmethod
    def get(cls, workspace: Any = None, name: str = "runbridge-local", *args: Any, **kwargs: Any) -> "Environment":
        """Any named environment: this Python."""
        return cls(name)

    @classmethod
    def _ignored(cls, name: str, *args: Any, **kwargs: Any) -> "Environment":
        """An environment built from a conda, pip or Docker specification: ignored, the script
        runs with this Python."""
        return cls(name)

    from_conda_specification = from_pip_requirements = _ignored
    from_existing_conda_environment = from_dockerfile = _ignored

    def register(self, workspace: Any = None) -> "Environment":
        """Registering is a no-op locally."""
        return self


class ScriptRunConfig:
    """What to run: ``script`` (a path relative to ``source_directory``) with ``arguments``.

    ``environment``, ``compute_target`` and the other Azure-only settings are accepted and ignored:
    the script runs locally with the current Python.
    """

    def __init__(self, source_directory: str | os.PathLike = ".", script: str | os.PathLike | None = None,
                 arguments: Sequence[Any] | None = None, environment: Any = None,
                 command: str | Sequence[Any] | None = None, **ignored: Any):
        if script is None and command is not None:  # azureml's command=["python", "train.py", ...]
            parts = command.split() if isinstance(command, str) else [str(c) for c in command]
            if len(parts) >= 2 and Path(parts[0]).name.startswith("python"):
                script, arguments = parts[1], list(parts[2:]) + list(arguments or [])
            else:
                raise ValueError(f"command {command!r} is not 'python SCRIPT [ARGS]'; runbridge runs Python scripts")
        if script is None:
            raise ValueError("ScriptRunConfig needs script, the file to run inside source_directory")
        if arguments is not None and (isinstance(arguments, (str, bytes)) or not hasattr(arguments, "__iter__")):
            raise TypeError(f"arguments must be a list, got {type(arguments).__name__}")
        self.source_directory = str(source_directory)
        self.script = str(script)
        self.arguments = [a if isinstance(a, str) else str(a) for a in (arguments or [])]
        self.environment = environment
        self.run_config = _Settings(environment=environment, **ignored)

    def __repr__(self) -> str:
        return (f"ScriptRunConfig(source_directory={self.source_directory!r}, script={self.script!r}, "
                f"arguments={self.arguments!r})")


# -- the environment hand-off --------------------------------------------------------------------
def run_environment(run: "Run") -> dict[str, str]:
    """The variables that make `Run.get_context()` in another process attach to `run`."""
    return {
        ENV_RUN_ID: run.id,
        ENV_EXPERIMENT: run.experiment.name,
        ENV_BACKENDS: ",".join(absolute_spec(spec) for spec in run._workspace.specs),
    }


def azureml_importable() -> bool:
    """Whether the real Azure ML SDK (``azureml.core``) is installed."""
    try:
        return importlib.util.find_spec("azureml.core") is not None
    except (ImportError, ValueError):
        return False


# -- submitting ----------------------------------------------------------------------------------
@dataclass
class _Submission:
    """What the submitting process knows about a run it submitted."""

    process: subprocess.Popen
    local_dir: Path
    log_path: Path


def submit(experiment: "Experiment", config: ScriptRunConfig, tags: dict | None = None, *,
           foreground: bool = False, azureml_shim: bool = True) -> "Run":
    """Start `config`'s script bound to a new run of `experiment` and return the run at once."""
    from .run import Run

    if not isinstance(config, ScriptRunConfig):
        raise TypeError(f"config must be a ScriptRunConfig, got {type(config).__name__}")
    source = Path(config.source_directory).expanduser().resolve()
    if not source.is_dir():
        raise NotADirectoryError(f"source_directory {config.source_directory!r} is not an existing folder")
    if not (source / config.script).is_file():
        raise FileNotFoundError(f"script {config.script!r} is not a file in source_directory {str(source)!r}")

    run = Run._start(experiment, outputs=None, tags=tags, run_type="script")
    run._exit_policy = "flush"  # the supervisor ends it, even after this process has gone
    local_dir = Path(tempfile.mkdtemp(prefix="runbridge-"))
    log_path = local_dir / "std_log.txt"
    log_path.touch()
    run._emit([Property(LOG_PATH_PROPERTY, str(log_path), now_us())])
    spec = {
        "run_id": run.id, "experiment": experiment.name,
        "backends": [absolute_spec(s) for s in experiment.workspace.specs],
        "source_directory": str(source), "script": config.script, "arguments": config.arguments,
        "local_dir": str(local_dir), "log_path": str(log_path), "foreground": foreground,
        "azureml_shim": bool(azureml_shim and not azureml_importable()),
    }
    spec_path = local_dir / "submission.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    if foreground:
        out: Any = None
        stdin: Any = None
    else:
        out = open(local_dir / "supervisor.log", "ab")
        stdin = subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", "from runbridge.submit import _supervise_main; _supervise_main()",
             str(spec_path)],
            cwd=str(source), stdin=stdin, stdout=out, stderr=out, start_new_session=not foreground,
            env={k: v for k, v in os.environ.items() if k not in (ENV_RUN_ID, ENV_EXPERIMENT)})
    except BaseException as exc:
        run.fail(f"could not start the runbridge supervisor: {type(exc).__name__}: {exc}")
        raise
    finally:
        if out is not None:
            out.close()
    run._submission = _Submission(process, local_dir, log_path)
    return run


# -- waiting -------------------------------------------------------------------------------------
def current_info(run: "Run") -> RunInfo:
    """The run's lifecycle as the backends hold it now (another process may have ended it)."""
    for info in run._workspace.list_runs(run.experiment.name):
        if info.run_id == run.id:
            return info
    info, _ = run._workspace.read_run(run.experiment.name, run.id)
    return info


def _reserved(run: "Run", key: str) -> str | None:
    _, records = run._workspace.read_run(run.experiment.name, run.id)
    for rec in records:
        if type(rec) is Property and rec.key == key:
            return rec.value
    return None


class _Tail:
    """Prints a run's output from a byte offset: the live local file, then the uploaded log."""

    def __init__(self, run: "Run", stream: IO[str]):
        self.run = run
        self.stream = stream
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        sub = getattr(run, "_submission", None)
        path = sub.log_path if sub is not None else _reserved(run, LOG_PATH_PROPERTY)
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
        if STD_LOG in self.run.get_file_names():
            with tempfile.TemporaryDirectory(prefix="runbridge-log-") as tmp:
                target = Path(tmp) / "std_log.txt"
                self.run.download_file(STD_LOG, target)
                data = target.read_bytes()
            if len(data) > self.offset:
                self._emit(data[self.offset:])
                self.offset = len(data)
        self._emit(b"", final=True)


def wait_for_completion(run: "Run", show_output: bool = False, raise_on_error: bool = True,
                        stream: IO[str] | None = None) -> dict[str, Any]:
    """Block until `run` ends (polling its status), optionally streaming its output; Ctrl-C stops
    waiting (the run goes on). Returns `get_details()`; raises `RunFailedError` if it did not complete."""
    out = stream if stream is not None else sys.stdout
    sub: _Submission | None = getattr(run, "_submission", None)
    tail = _Tail(run, out) if show_output else None
    if show_output:
        out.write(f"RunId: {run.id}\n")
        url = run.get_portal_url()
        if url:
            out.write(f"Web View: {url}\n")
        out.write("\nStreaming user_logs/std_log.txt\n=====================================\n\n")
        out.flush()
    try:
        info = _wait(run, sub, tail)
    except KeyboardInterrupt:
        out.write(f"\nStopped waiting; run {run.id} goes on (wait again with run.wait_for_completion()).\n")
        out.flush()
        raise
    if tail is not None:
        tail.finish()
    run._info = info
    details = run.get_details()
    error = details.get("error", {}).get("error", {}).get("message")
    if show_output:
        out.write("\nExecution Summary\n=================\n")
        out.write(f"RunId: {run.id}\nStatus: {info.status}\nDuration: {duration(info)}\n")
        url = run.get_portal_url()
        if url:
            out.write(f"Web View: {url}\n")
        if error:
            out.write(f"Error: {error}\n")
        out.write("\n")
        out.flush()
    if raise_on_error and info.status != COMPLETED:
        raise RunFailedError(f"run {run.id} ended {info.status}" + (f": {error}" if error else ""), details)
    return details


def _wait(run: "Run", sub: _Submission | None, tail: _Tail | None) -> RunInfo:
    interval = 0.1 if tail is not None else 0.2
    while True:
        if tail is not None:
            tail.poll()
        if sub is not None:
            code = sub.process.poll()
            if code is None:
                time.sleep(interval)
                continue
            info = current_info(run)
            if info.status == RUNNING:  # the supervisor died before ending the run
                run._info = info
                run.fail(f"the runbridge supervisor of this run exited with code {code} before ending it "
                         f"(see {sub.local_dir / 'supervisor.log'})")
                info = current_info(run)
            return info
        info = current_info(run)
        if info.status in FINAL_STATUSES:
            return info
        if not _supervisor_alive(run):
            info = current_info(run)  # it may have ended the run just before exiting
            if info.status == RUNNING:
                run._info = info
                run.fail("the runbridge supervisor of this run is gone (killed?) and did not end it")
                info = current_info(run)
            return info
        time.sleep(max(interval, 0.5))


def _supervisor_alive(run: "Run") -> bool:
    """False only when the run's supervisor ran on this machine and its process is gone."""
    value = getattr(run, "_supervisor_ref", None)
    if value is None:  # read once (it never changes): reading every record on each poll is costly
        value = _reserved(run, SUPERVISOR_PROPERTY)
        if value:
            run._supervisor_ref = value
    if not value:
        return True  # not a submitted run, or the supervisor is still starting: wait on
    host, _, pid_text = value.rpartition(":")
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
            return b"_supervise_main" in cmdline.read_bytes()
        except OSError:
            return True
    return True


# -- snapshots -----------------------------------------------------------------------------------
def _store_paths(specs: Sequence[str]) -> list[Path]:
    """Local folders/files the configured backends own (never part of a snapshot)."""
    return [Path(p) for spec in specs for p in locate(spec).paths]


def snapshot_files(source: Path, specs: Sequence[str] = ()) -> Iterator[Path]:
    """The files of `source` a snapshot keeps, sorted, skipping version control, outputs, caches,
    virtual environments and the run stores."""
    stores = {p.resolve() for p in _store_paths(specs)}
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SNAPSHOT_EXCLUDED and (here / d).resolve() not in stores
                         and not (here / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            path = here / name
            if path.resolve() not in stores and path.is_file():
                yield path


def make_snapshot(source: Path, zip_path: Path, specs: Sequence[str] = ()) -> str | None:
    """Zip the snapshot of `source` into `zip_path`; returns why it was skipped, or None."""
    files, total = [], 0
    for path in snapshot_files(source, specs):
        files.append(path)
        total += path.stat().st_size
        if len(files) > SNAPSHOT_MAX_FILES or total > SNAPSHOT_MAX_BYTES:
            return (f"the snapshot of {source} was skipped: more than {SNAPSHOT_MAX_FILES} files or "
                    f"{SNAPSHOT_MAX_BYTES // 2**20} MB (keep data outside source_directory)")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, path.relative_to(source).as_posix())
    return None


def restore_snapshot(run: "Run", path: str | os.PathLike | None = None) -> str:
    """Copy the run's snapshot zip to `path` (a file or folder; default: ``<run id>-snapshot.zip``)."""
    target = Path(path) if path is not None else Path(f"{run.id}-snapshot.zip")
    if target.is_dir():
        target = target / f"{run.id}-snapshot.zip"
    run.flush()
    if not run._workspace.fetch_file(run._info, SNAPSHOT_FILE, str(target)):
        raise FileNotFoundError(f"run {run.id} has no snapshot (only submitted runs keep one)")
    return str(target)


# -- the supervisor (a process of its own) -------------------------------------------------------
def _supervise_main() -> None:
    """Entry point of the supervisor process: ``python -c ... <run description>.json``."""
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sys.exit(_supervise(spec))


def _outputs_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    if not folder.is_dir():
        return {}
    state = {}
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            state[path.relative_to(folder).as_posix()] = (st.st_ctime_ns, st.st_mtime_ns, st.st_size)
    return state


def _failure_message(script: str, code: int, stderr_tail: bytes) -> str:
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
            del tail[:-16384]


def _supervise(spec: dict[str, Any]) -> int:
    """Run the script bound to the run, capture its output, and end the run; returns the exit code."""
    from .experiment import Experiment, Workspace
    from .run import Run

    child: subprocess.Popen | None = None

    def forward(signum: int, _frame: Any) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    # Ctrl-C / hang-up reach the script directly (same process group) or not at all: the
    # supervisor stays to record the end. A handler (not SIG_IGN) is reset to default in the child.
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: None)
    signal.signal(signal.SIGTERM, forward)

    workspace = Workspace(backends=spec["backends"])
    run = Run(Experiment(workspace, spec["experiment"]), spec["run_id"])
    run._exit_policy = "fail"
    from .buffer import track_unended

    track_unended(run)  # anything unexpected below: the run ends Failed, not Running
    run._emit([Property(SUPERVISOR_PROPERTY, f"{socket.gethostname()}:{os.getpid()}", now_us())])
    source = Path(spec["source_directory"])
    local_dir = Path(spec["local_dir"])
    log_path = Path(spec["log_path"])
    script = spec["script"]
    lock = threading.Lock()
    stderr_tail = bytearray()
    with open(log_path, "ab", buffering=0) as log:
        try:
            zip_path = local_dir / "snapshot.zip"
            skipped = make_snapshot(source, zip_path, spec["backends"])
            if skipped:
                log.write(f"[runbridge] {skipped}\n".encode())
            else:
                size = zip_path.stat().st_size
                from .media import sha256_of

                _, digest = sha256_of(path=zip_path)
                run._emit([File(SNAPSHOT_FILE, size, digest, now_us(), source=str(zip_path))])
        except Exception as exc:  # noqa: BLE001 - a snapshot problem must not stop the script
            log.write(f"[runbridge] the snapshot failed: {type(exc).__name__}: {exc}\n".encode())

        outputs = source / "outputs"
        before = _outputs_state(outputs)
        env = dict(os.environ)
        env.update({ENV_RUN_ID: spec["run_id"], ENV_EXPERIMENT: spec["experiment"],
                    ENV_BACKENDS: ",".join(spec["backends"]), "PYTHONUNBUFFERED": "1"})
        if spec.get("azureml_shim"):
            env["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR)] + [p for p in [env.get("PYTHONPATH")] if p])
        echo_out = sys.stdout.buffer if spec.get("foreground") else None
        echo_err = sys.stderr.buffer if spec.get("foreground") else None
        try:
            child = subprocess.Popen([sys.executable, script, *spec["arguments"]], cwd=str(source), env=env,
                                     stdin=None if spec.get("foreground") else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            run.fail(f"could not start {script}: {exc}")
            return 127
        pumps = [threading.Thread(target=_pump, args=(child.stdout, log, lock, echo_out, None), daemon=True),
                 threading.Thread(target=_pump, args=(child.stderr, log, lock, echo_err, stderr_tail), daemon=True)]
        for pump in pumps:
            pump.start()
        canceled = False
        while True:
            try:
                code = child.wait(timeout=2.0)
                break
            except subprocess.TimeoutExpired:
                pass
            try:
                if not canceled and current_info(run).status == CANCELED:  # run.cancel() elsewhere
                    canceled = True
                    child.terminate()
            except Exception:  # noqa: BLE001 - a status read failing must not stop supervising
                pass
        for pump in pumps:  # a daemon the script left behind may keep the pipes open: don't hang
            pump.join(timeout=10)

    # The script (or its workers) may have ended the run, tagged it, uploaded files: start fresh.
    run._info = current_info(run)
    run._state_loaded = False
    run._load_state()
    now_state = _outputs_state(outputs)
    changed = [name for name, st in sorted(now_state.items()) if before.get(name) != st]
    pairs = [(f"outputs/{name}", outputs / name) for name in changed if f"outputs/{name}" not in run._file_names]
    if pairs:
        try:
            run._upload(pairs)
        except Exception as exc:  # noqa: BLE001 - say so in the log, still end the run
            with open(log_path, "ab") as log:
                log.write(f"[runbridge] uploading outputs/ failed: {type(exc).__name__}: {exc}\n".encode())
    if STD_LOG not in run._file_names:
        run._upload([(STD_LOG, log_path)])
    run._emit([Tag(EXIT_CODE_TAG, str(code), now_us())])
    status = run._info.status
    if code == 0 and not canceled:
        if status == RUNNING:
            run._end(COMPLETED)
    elif canceled or status == CANCELED:
        if status != CANCELED:
            run._info = run._info._replace(status=RUNNING)
            run._end(CANCELED)
    else:
        run._info = run._info._replace(status=RUNNING)  # a script that completed itself then crashed
        run._end(FAILED, _failure_message(script, code, bytes(stderr_tail)))
    shutil.rmtree(local_dir, ignore_errors=True)
    return code if code >= 0 else 128 - code


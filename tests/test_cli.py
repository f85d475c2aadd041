"""The `runbridge` command line, run as a user runs it: real subprocesses, real stores."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from migration_fixtures import EXPERIMENT, make_reference, spec_for
from runbridge import Experiment, Run, Workspace

COMMANDS = ["backends", "runs", "show", "metrics", "migrate", "sync", "ui", "report", "plot"]


def runbridge(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("runbridge")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "runbridge"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBRIDGE_")}
    full_env.update(env or {})
    return subprocess.run(command + list(args), cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def store(tmp_path):
    spec = spec_for("sqlite", tmp_path / "store")
    top = make_reference(spec, tmp_path)
    return spec, top


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_with_an_example(command, tmp_path):
    result = runbridge(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout and f"runbridge {command}" in result.stdout.split("Example", 1)[1]
    assert "--backend" in result.stdout


def test_backends_lists_installed_backends_with_their_extras(tmp_path):
    result = runbridge("backends", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "EXTRA", "IMPORTABLE"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and not line.startswith(" ")}
    assert rows["sqlite"][1:3] == ["-", "yes"]
    assert rows["mlflow"][1:3] == ["mlflow", "yes"]
    assert rows["tensorboard"][1:3] == ["tensorboard", "yes"]
    assert "Configured: sqlite:.runbridge/runs.db" in result.stdout


def test_runs_prints_a_table_with_last_metric_values(store, tmp_path):
    spec, top = store
    result = runbridge("runs", "--backend", spec, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:7] == ["ID", "EXPERIMENT", "NAME", "STATUS", "START", "(UTC)", "DURATION"]
    assert len(rows) == 3
    parent = next(r for r in rows if r.startswith(top))
    assert "the parent" in parent and "Completed" in parent
    assert any("grandchild" in r and "Failed" in r for r in rows)
    # the last value of each shown metric under its column, blank where a run has none
    assert header.split()[7:] == ["acc", "big", "count"], header
    starts = [m.start() for m in re.finditer(r"\S+", header)][-4:]  # DURATION, acc, big, count

    def last_values(row: str) -> list[str]:
        return [row[a:b].strip() for a, b in zip(starts[1:], [*starts[2:], None])]

    child = next(r for r in rows if "child one" in r)
    grandchild = next(r for r in rows if "grandchild" in r)
    assert last_values(parent) == ["", str(2**62), "3"]
    assert last_values(child) == ["0.95", "", ""]
    assert last_values(grandchild) == ["", "", ""]
    by_experiment = runbridge("runs", "--experiment", EXPERIMENT, "--backend", spec, cwd=tmp_path)
    assert by_experiment.stdout == result.stdout
    unknown = runbridge("runs", "--experiment", "nope", "--backend", spec, cwd=tmp_path)
    assert_one_line_error(unknown, "nope")


def test_runs_reads_the_configuration_when_no_backend_is_given(store, tmp_path):
    spec, top = store
    result = runbridge("runs", cwd=tmp_path, env={"RUNBRIDGE_BACKENDS": spec})
    assert result.returncode == 0 and top in result.stdout
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "runbridge.toml").write_text(f'backends = ["{spec}"]\n')
    result = runbridge("runs", cwd=tmp_path / "proj")
    assert result.returncode == 0 and top in result.stdout


def test_show_prints_details_tags_properties_files_and_metrics(store, tmp_path):
    spec, top = store
    result = runbridge("show", top, "--backend", spec, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Run         {top}" in out and "Status      Completed" in out and "Name        the parent" in out
    assert "team = b" in out and "later = x" in out and "  empty" in out
    assert "p = 1" in out
    assert "notes/readme.txt  (6 bytes)" in out and "img.png" in out
    loss = next(line.split() for line in out.splitlines() if line.strip().startswith("loss "))
    assert loss == ["loss", "scalar", "5", "0.2", "0.2", "1"]
    assert f"{spec}: complete" in out
    assert "runbridge." not in out.replace("runbridge sync", "")


def test_metrics_json_is_the_get_metrics_shapes(store, tmp_path):
    spec, top = store
    result = runbridge("metrics", top, "--backend", spec, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    expected = Run(Experiment(Workspace(backends=[spec]), EXPERIMENT), top).get_metrics()
    assert metrics.keys() == expected.keys()
    assert metrics["loss"] == expected["loss"] and metrics["r"] == {"x": [1, 2], "y": [0.4, 0.5]}
    assert math.isnan(metrics["nan"]) and metrics["inf"] == float("-inf") and metrics["big"] == 2**62
    one = runbridge("metrics", top, "--name", "t", "--backend", spec, cwd=tmp_path)
    assert json.loads(one.stdout) == {"t": {"a": [1, 2], "b": ["x", "y"]}}


def test_metrics_csv_is_the_lossless_long_form(store, tmp_path):
    spec, top = store
    result = runbridge("metrics", top, "--format", "csv", "--name", "loss", "--backend", spec, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["seq"], r["step"], float(r["value"])) for r in rows] == \
        [(str(i), str(i * 10), 1.0 / (i + 1)) for i in range(5)]
    assert all(r["name"] == "loss" and r["kind"] == "scalar" and r["timestamp"] for r in rows)
    every = runbridge("metrics", top, "--csv", "--backend", spec, cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(every.stdout)))
    assert len(rows) == 5 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 3 + 2 + 2 + 1 + 1
    assert [(r["x"], r["y"]) for r in rows if r["name"] == "r"] == [("1", "0.4"), ("2", "0.5")]


def test_migrate_copies_then_reports_everything_present(store, tmp_path):
    spec, top = store
    dst = spec_for("tensorboard", tmp_path / "dst")
    dry = runbridge("migrate", spec, dst, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "Would copy 3 run(s)" in dry.stdout and f"copy     {EXPERIMENT}/{top}" in dry.stdout
    result = runbridge("migrate", spec, dst, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "copied:  3 run(s)" in result.stdout and "every value copied reads back exactly" in result.stdout
    assert "runs:" not in result.stderr  # no progress bars drawn into a pipe or a log file
    again = runbridge("migrate", spec, dst, "--no-progress", cwd=tmp_path)
    assert "copied:  0 run(s)" in again.stdout and "skipped: 3 run(s) already present" in again.stdout
    assert again.stderr.strip() == ""
    shown = runbridge("show", top, "--backend", dst, cwd=tmp_path)
    assert shown.returncode == 0 and "Name        the parent" in shown.stdout


def test_migrate_with_only_a_destination_uses_the_configured_source(store, tmp_path):
    spec, top = store
    dst = spec_for("sqlite", tmp_path / "dst")
    result = runbridge("migrate", dst, "--run", top, "--since", "2000-01-01", "--no-progress", cwd=tmp_path,
                       env={"RUNBRIDGE_BACKENDS": spec})
    assert result.returncode == 0, result.stderr
    assert "copied:  3 run(s)" in result.stdout


def test_errors_are_one_line_and_exit_1(store, tmp_path):
    spec, top = store
    assert_one_line_error(runbridge("runs", "--backend", "nonsense", cwd=tmp_path), "nonsense", "name:location")
    assert_one_line_error(runbridge("runs", "--backend", "nosuch:x", cwd=tmp_path), "nosuch", "installed")
    assert_one_line_error(runbridge("show", "no-such-run", "--backend", spec, cwd=tmp_path), "no-such-run")
    assert_one_line_error(runbridge("metrics", "no-such-run", "--backend", spec, cwd=tmp_path), "no-such-run")
    assert_one_line_error(runbridge("metrics", top, "--name", "absent", "--backend", spec, cwd=tmp_path), "absent")
    assert_one_line_error(runbridge("migrate", spec, "bogus", cwd=tmp_path), "bogus")
    assert_one_line_error(runbridge("migrate", spec, spec, cwd=tmp_path), "same backend")
    assert_one_line_error(runbridge("migrate", spec, spec_for("sqlite", tmp_path / "x"), "--run", "zzz",
                                    cwd=tmp_path), "zzz")
    assert_one_line_error(runbridge("migrate", spec, spec_for("sqlite", tmp_path / "x"), "--experiment", "nope",
                                    cwd=tmp_path), "nope")


def test_migrate_exits_1_when_a_run_cannot_be_copied(store, tmp_path):
    spec, top = store
    dst = spec_for("sqlite", tmp_path / "dst")
    occupant = Run._start(Experiment(Workspace(backends=[dst]), EXPERIMENT), outputs=None, run_id=top)
    occupant.complete()
    result = runbridge("migrate", spec, dst, "--no-progress", cwd=tmp_path)
    assert result.returncode == 1
    assert "failed:  1 run(s)" in result.stdout and "not overwritten" in result.stdout
    assert result.stderr.strip() == "Error: 1 run(s) could not be copied (see above)"


def test_reads_never_create_a_store_and_name_the_missing_one(tmp_path):
    """A mistyped store is an error naming its path, for every backend and read command, and
    nothing is created; a bare `runbridge sync` in a fresh folder does not create the default store."""
    typo = tmp_path / "typo"
    specs = {"sqlite": f"sqlite:{typo / 'runs.db'}", "tensorboard": f"tensorboard:{typo / 'tb'}",
             "mlflow": f"mlflow:sqlite:///{typo / 'mlflow.db'}", "jsonl": f"jsonl:{typo / 'jsonl'}"}
    for kind, spec in specs.items():
        path = spec.split(":", 1)[1].replace("sqlite:///", "")
        assert_one_line_error(runbridge("runs", "-b", spec, cwd=tmp_path), "no ", path)
    sqlite = specs["sqlite"]
    for command in (["show", "some-id"], ["metrics", "some-id"], ["migrate", sqlite, f"jsonl:{tmp_path / 'out'}"]):
        assert_one_line_error(runbridge(*command, "-b", sqlite, cwd=tmp_path), str(typo / "runs.db"))
    assert not typo.exists() and not (tmp_path / "out").exists()
    project = tmp_path / "project"
    project.mkdir()
    assert_one_line_error(runbridge("sync", cwd=project), str(project / ".runbridge" / "runs.db"))
    assert list(project.iterdir()) == []


def _without_file_permission_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set, so the process (root or not) is bound by file modes like any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_a_read_only_store_can_be_read(tmp_path):
    """`runbridge runs`/`show`/`metrics` on a store nobody may write (a colleague's, a read-only
    disk). Tests run as root, which ignores file modes; so the reading process drops the
    capabilities that let root override them and is refused every write, as any user would be."""
    store = tmp_path / "store"
    # written by another process that has exited, as a colleague's store is: no -wal/-shm files left
    made = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from migration_fixtures import make_reference; "
                           f"print(make_reference(sys.argv[1], Path({str(tmp_path)!r})))", f"sqlite:{store / 'runs.db'}"],
                          cwd=Path(__file__).parent, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.split()[-1]
    assert sorted(p.name for p in store.iterdir()) == ["runs.db", "runs.db-artifacts"]
    for path in [store, *store.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBRIDGE_")}
    env["RUNBRIDGE_SPOOL"] = str(tmp_path / "no-spool")
    probe = subprocess.run([sys.executable, "-c", f"open({str(store / 'probe')!r}, 'w')"], env=env,
                           preexec_fn=_without_file_permission_override, capture_output=True, text=True, timeout=60)
    assert "PermissionError" in probe.stderr  # the situation is real: this process cannot write there
    try:
        for args in (["runs"], ["show", run_id], ["metrics", run_id, "--name", "loss"]):
            result = subprocess.run([sys.executable, "-m", "runbridge", *args, "-b", f"sqlite:{store / 'runs.db'}"],
                                    cwd=tmp_path, env=env, preexec_fn=_without_file_permission_override,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr
            assert "readonly" not in result.stderr
            assert (run_id if args[0] != "metrics" else "0.5") in result.stdout
        assert sorted(p.name for p in store.iterdir()) == ["runs.db", "runs.db-artifacts"]
    finally:
        for path in [store, *store.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_progress_bars_are_drawn_on_a_terminal(store, tmp_path):
    """On a terminal (a real pseudo-terminal, 100 columns wide) migrate shows its progress bars."""
    import fcntl
    import pty
    import struct
    import termios

    spec, _ = store
    dst = spec_for("sqlite", tmp_path / "dst")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "runbridge", "migrate", spec, dst], cwd=tmp_path,
                               stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = bytearray()
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not data:
            break
        output.extend(data)
    os.close(leader)
    assert process.wait(timeout=300) == 0, output.decode(errors="replace")
    assert b"runs: 100%" in output and b"copied:  3 run(s)" in output

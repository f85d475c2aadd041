"""runbridge.migrate: runs copied between every pair of backends, idempotently and resumably."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migration_fixtures import (EXPERIMENT, KINDS, assert_snapshots_equal, make_reference, record_counts,
                                snapshot, spec_for)
from mlflow_fixtures import mlflow_sqlite_uri
from runbridge import Experiment, Run, Workspace
from runbridge.errors import StoreNotFoundError
from runbridge.migrate import MIGRATED_TAG, SOURCE_TAG, canonical_spec, migrate
from runbridge.records import Metric, Tag
from runbridge.testing import assert_same

PAIRS = [(a, b) for a in KINDS for b in KINDS]


@pytest.mark.parametrize("src_kind,dst_kind", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_every_pair_copies_everything_once(src_kind, dst_kind, tmp_path):
    src = spec_for(src_kind, tmp_path / "src")
    dst = spec_for(dst_kind, tmp_path / "dst")
    top = make_reference(src, tmp_path)
    expected = snapshot(src, tmp_path)
    assert len(expected) == 3

    report = migrate(src, dst, progress=False)
    assert report.failed == []
    assert sorted(report.copied) == sorted(expected)
    assert report.differences == [], report.summary()
    got = snapshot(dst, tmp_path)
    assert_snapshots_equal(got, expected)
    # the reserved bookkeeping stays hidden from the user
    assert not any(k.startswith("runbridge.") for k in got[top]["tags"])

    counts = record_counts(dst)
    again = migrate(src, dst, progress=False)
    assert again.copied == [] and again.failed == []
    assert sorted(r for r, _ in again.skipped) == sorted(expected)
    assert again.records == 0
    assert record_counts(dst) == counts


@pytest.mark.parametrize("kind", KINDS)
def test_there_and_back_gives_equal_runs_and_does_not_loop(kind, tmp_path):
    a = spec_for(kind, tmp_path / "a")
    b = spec_for("sqlite" if kind != "sqlite" else "mlflow", tmp_path / "b")
    a2 = spec_for(kind, tmp_path / "a2")
    make_reference(a, tmp_path)
    original = snapshot(a, tmp_path)
    counts = record_counts(a)
    assert migrate(a, b, progress=False).ok
    back = migrate(b, a, progress=False)  # to where they came from: nothing to do
    assert back.copied == [] and back.failed == []
    assert all("migrated from the destination" in reason for _, reason in back.skipped)
    assert record_counts(a) == counts
    report = migrate(b, a2, progress=False)  # B -> a fresh A
    assert report.ok and report.differences == []
    assert_snapshots_equal(snapshot(a2, tmp_path), original)


def test_a_foreign_run_with_the_same_id_is_reported_not_overwritten(tmp_path):
    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for("sqlite", tmp_path / "dst")
    ws_src, ws_dst = Workspace(backends=[src]), Workspace(backends=[dst])
    theirs = Experiment(ws_dst, EXPERIMENT).start_logging(outputs=None)
    theirs.log("x", 1)
    theirs.complete()
    mine = Run._start(Experiment(ws_src, EXPERIMENT), outputs=None, run_id=theirs.id)
    mine.log("x", 2)
    mine.complete()
    report = migrate(src, dst, progress=False)
    assert report.copied == []
    assert [r for r, _ in report.failed] == [theirs.id]
    assert "not overwritten" in report.failed[0][1]
    assert Run(Experiment(ws_dst, EXPERIMENT), theirs.id).get_metrics() == {"x": 1}


def test_selection_by_experiment_run_and_since(tmp_path):
    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for("sqlite", tmp_path / "dst")
    top = make_reference(src, tmp_path)
    ws = Workspace(backends=[src])
    other = Experiment(ws, "other").start_logging(outputs=None)
    other.log("y", 1)
    other.complete()

    dry = migrate(src, dst, experiments=["other"], dry_run=True, progress=False)
    assert [(r, e, a) for r, e, a in dry.planned] == [(other.id, "other", "copy")]
    assert not (tmp_path / "dst").exists()  # a dry run creates nothing

    assert migrate(src, dst, experiments=["other"], progress=False).copied == [other.id]
    by_run = migrate(src, dst, run_ids=[top], progress=False)  # a run comes with its descendants
    assert len(by_run.copied) == 3 and by_run.copied[0] == top
    assert migrate(src, dst, since="2999-01-01", progress=False).copied == []
    with pytest.raises(Exception, match="nope"):
        migrate(src, dst, experiments=["nope"], progress=False)
    with pytest.raises(Exception, match="no-such-run"):
        migrate(src, dst, run_ids=["no-such-run"], progress=False)


def test_parents_are_copied_before_children(tmp_path):
    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for("mlflow", tmp_path / "dst")
    top = make_reference(src, tmp_path)
    report = migrate(src, dst, progress=False)
    assert report.copied[0] == top
    from mlflow import MlflowClient

    client = MlflowClient(dst.split(":", 1)[1])
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert by_name["child one"].data.tags["mlflow.parentRunId"] == by_name["the parent"].info.run_id
    assert by_name["grandchild"].data.tags["mlflow.parentRunId"] == by_name["child one"].info.run_id


@pytest.mark.parametrize("dst_kind", KINDS)
def test_a_half_written_copy_is_finished_without_duplicates(dst_kind, tmp_path):
    """What a killed migration leaves (a prefix of the records, no completion marker) is finished."""
    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for(dst_kind, tmp_path / "dst")
    top = make_reference(src, tmp_path)
    expected = snapshot(src, tmp_path)
    source, dest = Workspace(backends=[src]).backends[0], Workspace(backends=[dst]).backends[0]
    found = source.read(EXPERIMENT, top)
    info, records = found.info, found.records
    dest.start_run(info._replace(status="Running", end_time=None))
    mark = json.dumps({"backend": canonical_spec(src), "run_id": top, "via": []})
    dest.write(info, [Tag(SOURCE_TAG, mark, 1), *records[:7]])
    report = migrate(src, dst, progress=False)
    assert report.resumed == [top] and report.differences == []
    assert_snapshots_equal(snapshot(dst, tmp_path), expected)
    held = dest.read(EXPERIMENT, top).records
    assert sum(type(r) is Metric for r in held) == sum(type(r) is Metric for r in records)
    assert [r.value for r in held if type(r) is Tag and r.key == MIGRATED_TAG] == ["complete"]


def test_a_killed_migration_rerun_copies_each_run_once(tmp_path):
    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for("sqlite", tmp_path / "dst")
    ws = Workspace(backends=[src])
    exp = Experiment(ws, EXPERIMENT)
    for i in range(6):
        run = exp.start_logging(outputs=None)
        run.log_list("points", list(range(20_000)))
        run.log("i", i)
        run.complete()
    script = textwrap.dedent(f"""
        from runbridge.migrate import migrate
        migrate({src!r}, {dst!r}, progress=False, batch_records=500, verify=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    db = Path(dst.split(":", 1)[1])

    def partial_runs() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(db, timeout=30) as conn:
            try:
                return conn.execute(
                    "SELECT count(*) FROM runs r WHERE NOT EXISTS"
                    " (SELECT 1 FROM tags t WHERE t.run = r.pk AND t.key = ?)", (MIGRATED_TAG,)).fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                return 0

    def complete_runs() -> int:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM tags WHERE key = ?", (MIGRATED_TAG,)).fetchone()[0]

    # Kill it once it has finished at least two runs and is half-way through another.
    while proc.poll() is None and not (partial_runs() and complete_runs() >= 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the migration finished before it could be killed"
    half = partial_runs()
    done_before = complete_runs()
    assert 2 <= done_before < 6

    report = migrate(src, dst, progress=False)
    assert report.failed == [] and report.differences == []
    assert len(report.skipped) == done_before
    assert len(report.resumed) == half
    assert len(report.copied) == 6 - done_before
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
        per_run = dict(conn.execute(
            "SELECT r.run_id, sum(c.n) FROM metric_chunks c JOIN runs r ON c.run = r.pk GROUP BY r.run_id"))
    assert len(ids) == len(set(ids)) == 6
    assert set(per_run.values()) == {20_001}
    assert_snapshots_equal(snapshot(dst, tmp_path), snapshot(src, tmp_path))


def test_values_the_destination_cannot_hold_are_reported(tmp_path):
    """A destination that changes what it stores shows up in the report, per run and name."""
    src = spec_for("sqlite", tmp_path / "src")
    top = make_reference(src, tmp_path)
    from runbridge.migrate import compare

    records = Workspace(backends=[src]).backends[0].read(EXPERIMENT, top).all()
    lossy = [r._replace(value=float(r.value)) if type(r) is Metric and r.name == "count" else r for r in records]
    diffs = compare(top, records, lossy)
    assert [(d.name, d.detail) for d in diffs] == [("count", "1 of 1 values differ (first, #0: 3 reads back as 3.0)")]


# --- runs other tools wrote ----------------------------------------------------------------------
def test_a_tensorboardx_folder_migrates_to_mlflow(tmp_path):
    import tensorboardX as tbx
    logdir = tmp_path / "tbx"
    writer = tbx.SummaryWriter(str(logdir / "exp1" / "run_a"))
    logged = []
    for step in range(0, 300, 3):
        value = 1.0 / (step + 1)
        writer.add_scalar("train/loss", value, step)
        logged.append((step, value))
    writer.add_text("notes", "hello", 0)
    writer.close()
    dst = spec_for("mlflow", tmp_path / "dst")
    report = migrate(f"tensorboard:{logdir}", dst, progress=False)
    assert report.ok and len(report.copied) == 1, report.summary()

    from mlflow import MlflowClient
    import numpy as np

    client = MlflowClient(dst.split(":", 1)[1])
    experiment = client.get_experiment_by_name("exp1")
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(s, float(np.float32(v))) for s, v in logged]
    # and through runbridge, the copied run reads like the folder
    src_metrics = Run(Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "exp1"), "run_a").get_metrics()
    dst_metrics = Run(Experiment(Workspace(backends=[dst]), "exp1"), "run_a").get_metrics()
    assert_same(dst_metrics, src_metrics)


@pytest.mark.parametrize("dst_kind", ["tensorboard", "sqlite"])
def test_a_plain_mlflow_run_migrates(dst_kind, tmp_path):
    import mlflow

    uri = mlflow_sqlite_uri(tmp_path / "plain")
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment("plain-exp")
        with mlflow.start_run(run_name="plain") as active:
            for step in range(20):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_param("lr", "0.1")
            mlflow.set_tag("team", "x")
            note = tmp_path / "note.txt"
            note.write_text("artifact body")
            mlflow.log_artifact(str(note))
        plain_id = active.info.run_id
    finally:
        mlflow.set_tracking_uri(None)
    src = f"mlflow:{uri}"
    dst = spec_for(dst_kind, tmp_path / "dst")
    report = migrate(src, dst, progress=False)
    assert report.ok and report.differences == [], report.summary()
    [(run_id)] = report.copied
    src_run = Run(Experiment(Workspace(backends=[src]), "plain-exp"), run_id)
    dst_run = Run(Experiment(Workspace(backends=[dst]), "plain-exp"), run_id)
    assert_same(dst_run.get_metrics(), src_run.get_metrics())
    assert dst_run.get_metrics()["loss"] == [1.0 / (s + 1) for s in range(20)]
    assert dst_run.get_tags()["team"] == "x" and dst_run.get_properties()["lr"] == "0.1"
    assert "note.txt" in dst_run.get_file_names()
    out = dst_run.download_file("note.txt", tmp_path / "got.txt")
    assert Path(out).read_text() == "artifact body"
    assert run_id == plain_id  # a run plain MLflow wrote keeps its MLflow id


def test_runbridge_migrate_is_callable_from_the_package(tmp_path):
    import runbridge

    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for("sqlite", tmp_path / "dst")
    make_reference(src, tmp_path)
    report = runbridge.migrate(src, dst, progress=False)
    assert len(report.copied) == 3 and "copied:  3 run(s)" in report.summary()


def test_a_copy_killed_right_after_it_was_created_is_finished(tmp_path):
    src, dst = spec_for("sqlite", tmp_path / "src"), spec_for("sqlite", tmp_path / "dst")
    top = make_reference(src, tmp_path)
    info = Workspace(backends=[src]).backends[0].read(EXPERIMENT, top).info
    Workspace(backends=[dst]).backends[0].start_run(info._replace(status="Running", end_time=None))
    report = migrate(src, dst, progress=False)
    assert top in report.resumed and report.failed == [] and report.differences == []
    assert_snapshots_equal(snapshot(dst, tmp_path), snapshot(src, tmp_path))


def _mlflow_run_naming(tmp_path: Path, bad_name: str) -> tuple[str, str, Path]:
    """An MLflow store whose runbridge run's record stream lists File(bad_name), with a file planted
    where that name points (outside the run's artifacts); returns (spec, run id, planted path)."""
    from mlflow import MlflowClient
    from runbridge.records import File, record_to_json

    src = spec_for("mlflow", tmp_path / "src")
    ws = Workspace(backends=[src])
    run = Experiment(ws, "evil").start_logging(outputs=None)
    run.log("m", 1)
    run.complete()
    client = MlflowClient(tracking_uri=src[len("mlflow:"):])
    native = client.search_runs([client.get_experiment_by_name("evil").experiment_id])[0]
    chunk = tmp_path / "chunk" / f"{time.time_ns():020d}-1-0.jsonl"
    chunk.parent.mkdir()
    chunk.write_text(record_to_json(File(bad_name, 6, "", 1)) + "\n")
    client.log_artifact(native.info.run_id, str(chunk), "runbridge/records")
    artifacts = Path(native.info.artifact_uri[len("file://"):])
    planted = (artifacts / bad_name).resolve()
    assert tmp_path in planted.parents and artifacts not in planted.parents
    planted.write_text("SECRET")
    return src, run.id, planted


@pytest.mark.parametrize("dst_kind", ["sqlite", "tensorboard", "mlflow", "jsonl"])
def test_a_file_name_from_the_source_that_escapes_fails_the_run_and_writes_nothing(dst_kind, tmp_path,
                                                                                  monkeypatch):
    import tempfile

    # temporary folders under tmp_path too, so '../../' from one stays inside the test's folder
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    src, run_id, planted = _mlflow_run_naming(tmp_path, "../../escaped.txt")
    dst = {"jsonl": f"jsonl:{tmp_path / 'dst'}",  # a path where no store exists yet, in each kind
           "mlflow": f"mlflow:sqlite:///{tmp_path / 'dst' / 'mlflow.db'}"}.get(dst_kind) or \
        spec_for(dst_kind, tmp_path / "dst")
    report = migrate(src, dst, progress=False)
    assert not report.ok and report.copied == []
    [(failed_id, reason)] = report.failed
    assert failed_id == run_id and "'../../escaped.txt'" in reason and "unsafe file name" in reason
    assert sorted(tmp_path.rglob("escaped.txt")) == [planted]  # nothing copied anywhere
    with pytest.raises(StoreNotFoundError):  # nothing written at the destination, not even a store
        Workspace(backends=[dst]).list_runs(None)


def test_names_read_back_from_a_store_are_checked_before_any_path_is_built(tmp_path, monkeypatch):
    """A tampered store (a file row, an index entry, a record stream naming '../..') fails the read
    or fetch of that run with a message naming the bad name; nothing outside the store is read."""
    import io
    import sqlite3 as sql

    from runbridge.backends import open_backend
    from runbridge.errors import RunbridgeError

    sqlite_spec = spec_for("sqlite", tmp_path / "s")
    run = Experiment(Workspace(backends=[sqlite_spec]), "tampered").start_logging(outputs=None)
    run.upload_file("a.txt", io.BytesIO(b"a"))
    run.complete()
    with sql.connect(tmp_path / "s" / "sqlite" / "runs.db") as conn:
        conn.execute("UPDATE files SET name = '../../outside.txt'")
    reopened = Run(Experiment(Workspace(backends=[sqlite_spec]), "tampered"), run.id)  # the header only
    with pytest.raises(RunbridgeError, match="'../../outside.txt' contains '..'"):
        reopened.get_file_names()

    tb_spec = spec_for("tensorboard", tmp_path / "t")
    parent = Experiment(Workspace(backends=[tb_spec]), "tampered").start_logging(outputs=None)
    child = parent.child_run()
    child.complete()
    parent.complete()
    index = next((tmp_path / "t" / "tb").rglob(f".runbridge-index/{child.id}"))
    index.write_text("../../..")
    with pytest.raises(RunbridgeError, match="'../../..' contains '..'"):
        Run(Experiment(Workspace(backends=[tb_spec]), "tampered"), child.id)

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(__import__("tempfile"), "tempdir", str(tmp_path / "tmp"))
    src, run_id, planted = _mlflow_run_naming(tmp_path / "m", "../../escaped.txt")
    backend = open_backend(src)
    info = backend.list_runs("evil")[0]
    with pytest.raises(RunbridgeError, match="'../../escaped.txt' contains '..'"):
        backend.fetch_file(info, "../../escaped.txt", str(tmp_path / "fetched"))
    assert not (tmp_path / "fetched").exists()

"""Reads of the built-in store through its fast hooks (read_info, read_metrics, summarize_runs):
values exact whatever their mix, in logging order, with several writers, from another process
while the run is live; opening a run reads its header only; the run list's numbers exact, also
on a store made before summaries existed."""

import json
import math
import sqlite3
import subprocess
import sys

import pandas as pd

from runbridge import Experiment, Run, Workspace
from runbridge.frames import metrics_frame
from runbridge.records import exactly_equal
from runbridge.testing import EXACT_VALUES


def _fresh_run(spec: str, run: Run) -> Run:
    return Run(Experiment(Workspace(backends=[spec]), run.experiment.name), run.id)


def test_one_metric_mixing_every_kind_of_value_reads_back_exactly(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(outputs=None)
    for i, value in enumerate(EXACT_VALUES * 600):  # > one batch: several chunks, odd values in each
        run.log("m", value, step=None if i % 3 == 0 else i)
    run.log_list("m", [1, 2.5, None])
    run.complete()
    fresh = _fresh_run(spec, run)
    assert fresh.experiment.workspace.backends[0].implements("read_metrics")
    expected = EXACT_VALUES * 600 + [1.0, 2.5, None]  # a float among the numbers of a list makes them floats
    assert exactly_equal(fresh.get_metrics("m"), {"m": expected})
    assert exactly_equal(fresh.get_metrics(), {"m": expected})
    frame = fresh.get_metrics_frame("m")
    assert exactly_equal(frame["value"].tolist(), expected)
    steps = frame["step"].tolist()
    assert [None if s != s else int(s) for s in steps[:6]] == [None, 1, 2, None, 4, 5]
    assert frame["kind"].tolist() == ["scalar"] * (len(expected) - 3) + ["list"] * 3
    assert frame["seq"].tolist() == list(range(len(expected)))


def test_metrics_logged_without_steps_read_back_exactly_and_store_no_steps(tmp_path):
    """`run.log(name, value)` with no step, the azureml way, several metrics of one process
    interleaved over several batches: values, None steps, order and the run list's summary exact;
    the store keeps no steps array for those chunks."""
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(outputs=None)
    loss = [1 / (i + 1) for i in range(25_000)]
    loss[7] = math.nan
    for i, value in enumerate(loss):
        run.log("loss", value)
        run.log("lr", 0.001 * (i % 10))
    run.log("loss", 0.25, step=3)  # a later chunk with a step: both layouts in one metric
    run.complete()
    fresh = _fresh_run(spec, run)
    metrics = fresh.get_metrics()
    assert exactly_equal(metrics["loss"], loss + [0.25])
    assert metrics["lr"] == [0.001 * (i % 10) for i in range(25_000)]
    frame = fresh.get_metrics_frame("loss")
    steps = frame["step"].tolist()
    assert all(s != s for s in steps[:-1]) and steps[-1] == 3
    row = Experiment(Workspace(backends=[spec]), "exp").get_runs_frame().set_index("run_id").loc[run.id]
    assert [row["loss.last"], row["loss.min"], row["loss.max"]] == [0.25, 1 / 25_000, 1.0]
    assert [row["lr.last"], row["lr.min"], row["lr.max"]] == [0.001 * 9, 0.0, 0.001 * 9]
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        sizes = conn.execute("SELECT n, length(steps) FROM metric_chunks ORDER BY rowid").fetchall()
    assert sum(n for n, _ in sizes) == 50_001
    assert [size for _, size in sizes[:-1]] == [0] * (len(sizes) - 1) and sizes[-1][1] > 0


def test_several_metrics_tables_and_files_keep_the_records_order(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(outputs=None)
    for i in range(12_000):
        run.log("loss", 1 / (i + 1), step=i)
        if i % 100 == 0:
            run.log("acc", i // 100)
        if i % 4000 == 0:
            run.log_row("table", epoch=i, note="x")
    run.log_confusion_matrix("cm", {"a": 1})
    run.complete()
    fresh = _fresh_run(spec, run)
    metrics = fresh.get_metrics()
    assert list(metrics) == ["loss", "acc", "table", "cm"]
    assert metrics["loss"] == [1 / (i + 1) for i in range(12_000)]
    assert metrics["acc"] == list(range(120))
    assert metrics["table"] == {"epoch": [0, 4000, 8000], "note": ["x", "x", "x"]}
    assert metrics["cm"] == f"runbridge://{run.id}/cm"
    assert fresh.get_metrics("acc") == {"acc": list(range(120))}
    assert fresh.get_metrics("table") == {"table": {"epoch": [0, 4000, 8000], "note": ["x", "x", "x"]}}
    # the frame read as columns is the frame built from every record
    _, records = fresh.experiment.workspace.read_run("exp", run.id)
    pd.testing.assert_frame_equal(fresh.get_metrics_frame(), metrics_frame(records))
    pd.testing.assert_frame_equal(fresh.get_metrics_frame("acc"), metrics_frame(records, "acc"))


def test_two_writers_of_one_metric_read_back_in_time_order(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(outputs=None)
    other = _fresh_run(spec, run)  # a second writer of the same run (as a second process would be)
    for i in range(300):
        run.log("loss", float(i), step=i)
        other.log("loss", -float(i), step=i)
        if i == 150:
            other.flush()
    other.flush()
    run.complete()
    fresh = _fresh_run(spec, run)
    values = fresh.get_metrics("loss")["loss"]
    assert sorted(values) == sorted([float(i) for i in range(300)] + [-float(i) for i in range(300)])
    frame = fresh.get_metrics_frame("loss")
    assert frame["timestamp"].is_monotonic_increasing
    assert sorted(frame.groupby("writer").size().tolist()) == [300, 300]
    assert frame["value"].tolist() == values


READER = """
import json, sys
from runbridge import Experiment, Run, Workspace
run = Run(Experiment(Workspace(backends=[sys.argv[1]]), "exp"), sys.argv[2])
values = run.get_metrics("m")["m"]
frame = run.get_metrics_frame("m")
print(json.dumps({"status": run.status, "values": [repr(v) for v in values],
                  "types": [type(v).__name__ for v in values], "rows": len(frame)}))
"""


def test_another_process_reads_a_live_run_as_columns(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(outputs=None)
    logged = [0.5, 3, float("nan"), "text", None, True, -0.0, 1 << 70] * 2000
    for value in logged:
        run.log("m", value)
    run.flush()  # still Running: the reader sees what was written
    out = subprocess.run([sys.executable, "-c", READER, spec, run.id], capture_output=True, text=True,
                         timeout=120, check=True)
    got = json.loads(out.stdout)
    assert got["status"] == "Running"
    assert got["values"] == [repr(v) for v in logged]
    assert got["types"] == [type(v).__name__ for v in logged]
    assert got["rows"] == len(logged)
    run.complete()


def _summary_store(tmp_path):
    spec = f"sqlite:{tmp_path / 'runs.db'}"
    exp = Experiment(Workspace(backends=[spec]), "exp")
    first = exp.start_logging(outputs=None, tags={"kind": "a"})
    for value in [3, 2.5, float("nan"), True, "s", None, -0.0, 1 << 70, 7]:
        first.log("mixed", value)
    first.log("only_nan", float("nan"))
    first.complete()
    second = exp.start_logging(outputs=None, tags={"kind": "b"})
    second.log("mixed", 1.5)
    second.log("mixed", float("nan"))  # NaN is left out: last is 1.5
    other = _fresh_run(spec, second)  # another writer, logging later
    other.log("mixed", -4)
    other.flush()
    second.add_properties({"p": "1"})
    second.complete()
    return spec, first, second


def test_the_run_list_holds_exact_last_min_max(tmp_path):
    spec, first, second = _summary_store(tmp_path)
    frame = Experiment(Workspace(backends=[spec]), "exp").get_runs_frame().set_index("run_id")
    row = frame.loc[first.id]
    assert [row["mixed.last"], row["mixed.min"], row["mixed.max"]] == [7, -0.0, 1 << 70]
    assert math.copysign(1, row["mixed.min"]) == -1 and type(row["mixed.max"]) is int
    assert "only_nan.last" not in frame.columns
    assert [frame.loc[second.id, c] for c in ("mixed.last", "mixed.min", "mixed.max")] == [-4, -4, 1.5]
    assert frame.loc[first.id, "tags.kind"] == "a" and frame.loc[second.id, "tags.kind"] == "b"
    runs = Experiment(Workspace(backends=[spec]), "exp")
    assert [r.id for r in runs.get_runs(properties={"p": "1"})] == [second.id]
    assert [r.id for r in runs.get_runs(tags={"kind": "a"})] == [first.id]


def test_a_store_made_before_summaries_lists_runs_the_same_before_and_after_its_upgrade(tmp_path):
    spec, first, second = _summary_store(tmp_path)
    before = Experiment(Workspace(backends=[spec]), "exp").get_runs_frame()
    db = tmp_path / "runs.db"
    with sqlite3.connect(db) as conn:  # what a store of schema 3 holds: no summaries
        conn.execute("DROP TABLE metric_summary")
        conn.execute("PRAGMA user_version = 3")
    reader = Workspace(backends=[spec])
    assert reader.backends[0].summarize_runs("exp") is None  # a reader may not upgrade it
    pd.testing.assert_frame_equal(Experiment(reader, "exp").get_runs_frame(), before)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    _fresh_run(spec, first).add_properties({"q": "2"})  # a write upgrades it (to 5: chunks without steps)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    after = Experiment(Workspace(backends=[spec]), "exp").get_runs_frame()
    assert Workspace(backends=[spec]).backends[0].summarize_runs("exp") is not None
    pd.testing.assert_frame_equal(after, before)

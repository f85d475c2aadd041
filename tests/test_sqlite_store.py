"""The built-in store's packed metric layout: older stores stay readable, other processes read a
live run, and every value reads back exactly whatever the mix of series in one batch."""

import math
import sqlite3
import subprocess
import sys

from runbridge import Experiment, Run, Workspace
from runbridge.records import Metric, exactly_equal
from runbridge_sqlite.schema import MIGRATIONS


def _old_store(db) -> None:
    """A store as runbridge wrote it before points were packed (schema 2, a row per point)."""
    conn = sqlite3.connect(db, isolation_level=None)
    for version, statements in enumerate(MIGRATIONS[:2]):
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    conn.execute("INSERT INTO runs VALUES (1, 'old-run', 'exp', NULL, NULL, 'Running', 1000, NULL, NULL)")
    rows = [  # value, vtype (0 float, 1 int, 2 bool, 3 str, 4 None, 5 int beyond 64 bits)
        (0.25, 0), (None, 0), (7, 1), (1, 2), ("s", 3), (None, 4), (str(1 << 70), 5)]
    conn.executemany("INSERT INTO metrics VALUES (1, 'm', ?, ?, ?, ?, ?, 0, NULL, 'w-old')",
                     [(i, v, t, i, 2000 + i) for i, (v, t) in enumerate(rows)])
    conn.close()


OLD_VALUES = [0.25, float("nan"), 7, True, "s", None, 1 << 70]


def test_a_store_written_before_packing_reads_unchanged_and_takes_new_points(tmp_path):
    db = tmp_path / "runs.db"
    _old_store(db)
    spec = f"sqlite:{db}"
    got = Run(Experiment(Workspace(backends=[spec]), "exp"), "old-run").get_metrics()["m"]
    assert exactly_equal(got, OLD_VALUES)
    with sqlite3.connect(db) as conn:  # reading migrated nothing
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    reader = Workspace(backends=[spec]).backends[0]  # a reader that stays open across the upgrade
    assert len([r for r in reader.read("exp", "old-run").records if type(r) is Metric]) == len(OLD_VALUES)

    run = Run(Experiment(Workspace(backends=[spec]), "exp"), "old-run")
    run.log("m", 0.5)
    run.log("m", -0.0)
    run.flush()
    again = Run(Experiment(Workspace(backends=[spec]), "exp"), "old-run").get_metrics()["m"]
    assert exactly_equal(again, OLD_VALUES + [0.5, -0.0])
    seen = [r.value for r in reader.read("exp", "old-run").records if type(r) is Metric]
    assert exactly_equal(seen, OLD_VALUES + [0.5, -0.0])


READER = """
import json, sys
from runbridge import Experiment, Run, Workspace
run = Run(Experiment(Workspace(backends=[sys.argv[1]]), "exp"), sys.argv[2])
frame = run.get_metrics_frame()
print(json.dumps({"metrics": {k: repr(v) for k, v in run.get_metrics().items()},
                  "names": frame["name"].tolist(), "steps": [None if s != s else s for s in frame["step"]]}))
"""


def test_another_process_reads_a_live_run_with_mixed_series_in_order(tmp_path):
    import json

    spec = f"sqlite:{tmp_path / 'runs.db'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(outputs=None)
    odd = [1 << 80, True, None, "text", float("inf"), -0.0, 3]
    for i in range(12_000):  # more than one batch; two series interleaved, odd values in between
        run.log("loss", i * 0.5, step=i)
        if i % 1000 == 0:
            run.log("odd", odd[(i // 1000) % len(odd)], description="odd one" if i == 0 else "")
    run.log_list("listed", [1.5, 2.5])
    run.flush()  # the run is still Running
    out = subprocess.run([sys.executable, "-c", READER, spec, run.id], capture_output=True, text=True,
                         timeout=120, check=True)
    got = json.loads(out.stdout)
    expected_odd = [odd[k % len(odd)] for k in range(12)]
    assert got["metrics"]["loss"] == repr([i * 0.5 for i in range(12_000)])
    assert got["metrics"]["odd"] == repr(expected_odd)
    assert got["metrics"]["listed"] == repr([1.5, 2.5])
    names = got["names"]
    assert names[:3] == ["loss", "odd", "loss"] and names.count("odd") == 12
    assert got["steps"][:2] == [0, None]
    run.complete()
    mine = Run(Experiment(Workspace(backends=[spec]), "exp"), run.id).get_metrics()
    assert exactly_equal(mine["odd"], expected_odd) and math.copysign(1, mine["odd"][5]) == -1

"""The built-in SQLite store against a plain SQLite table (README, Performance), in one run.

    python tests/benchmarks/bench_store.py [--points 1000000]

The anchor is what a person would write without runbridge: ``executemany`` of
``(run, name, step, value, time)`` rows into a plain table without indexes, in one transaction,
and a ``SELECT`` / ``pandas.read_sql`` of those rows back.

(a) the store alone: N points of one metric handed to the backend's write hook in batches of
    10,000 (what the writer thread does), vs the raw executemany of the same N points;
(b) end to end: N run.log calls + flush, vs the same raw executemany (the script's loop counted
    on runbridge's side only, so this ratio is harder than the issue's), and vs the script a
    person would write without runbridge: a loop appending (run, name, step, value, time) rows
    with the wall time read per point, then the executemany (both sides then pay for the loop);
(c) get_metrics(name) and get_metrics() of the N points (a Run opened by id in a fresh workspace,
    the opening counted), vs a raw SELECT of one row per point;
(d) get_metrics_frame() of the N points, vs pandas.read_sql of the same rows.
Not a test: machines are noisy, so it prints figures and ratios instead of asserting times.
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import tempfile
import time
from pathlib import Path

from runbridge import Experiment, Run, Workspace
from runbridge.records import Metric, RunInfo, now_us
from markdown_table import print_table

BATCH = 10_000


class _Clock:
    """Wall time and this process's CPU time (all threads) of a block: on a shared machine the
    CPU figure is the steadier one, and it counts the writer thread's work too."""

    def __enter__(self) -> "_Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _raw(tmp: str, points: int, t0: int) -> dict[str, _Clock]:
    conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE points (run TEXT, name TEXT, step INTEGER, value REAL, time INTEGER)")
    rows = [("r1", "loss", i, i * 0.001, t0 + i) for i in range(points)]
    gc.collect()
    with _Clock() as ingest:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    del rows
    conn.execute("DELETE FROM points")
    gc.collect()
    with _Clock() as script:
        rows = []
        add = rows.append
        for i in range(points):
            add(("r1", "loss", i, i * 0.001, time.time_ns() // 1000))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    del rows
    query = "SELECT name, step, value, time FROM points WHERE run = 'r1' AND name = 'loss'"
    with _Clock() as read:
        got = conn.execute(query).fetchall()
    assert len(got) == points
    del got
    import pandas as pd

    with _Clock() as frame_s:
        frame = pd.read_sql(query, conn)
    assert len(frame) == points
    conn.close()
    return {"ingest": ingest, "script": script, "read": read, "frame": frame_s}


def _store_alone(tmp: str, points: int, t0: int) -> _Clock:
    backend = Workspace(backends=[f"sqlite:{tmp}/alone.db"]).backends[0]
    info = RunInfo("alone", "bench", start_time=t0)
    backend.start_run(info)
    batches = [[Metric("loss", i, i * 0.001, i, t0 + i, False, "", "w")
                for i in range(start, min(start + BATCH, points))] for start in range(0, points, BATCH)]
    gc.collect()
    with _Clock() as clock:
        for batch in batches:
            backend.write(info, batch)
    return clock


def measure(points: int) -> dict[str, _Clock]:
    out: dict[str, _Clock] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = now_us()
        out.update({f"raw_{k}": v for k, v in _raw(tmp, points, t0).items()})
        out["alone"] = _store_alone(tmp, points, t0)
        spec = f"sqlite:{tmp}/runs.db"
        run = Experiment(Workspace(backends=[spec]), "bench").start_logging(outputs=None)
        log = run.log
        gc.collect()
        with _Clock() as out["e2e"]:
            for i in range(points):
                log("loss", i * 0.001, step=i)
            run.flush()
        run.complete()
        run_id = run.id

        with _Clock() as out["read"]:
            values = Run(Experiment(Workspace(backends=[spec]), "bench"), run_id).get_metrics("loss")["loss"]
        assert len(values) == points
        del values
        with _Clock() as out["read_all"]:
            values = Run(Experiment(Workspace(backends=[spec]), "bench"), run_id).get_metrics()["loss"]
        assert len(values) == points
        del values
        with _Clock() as out["frame"]:
            frame = Run(Experiment(Workspace(backends=[spec]), "bench"), run_id).get_metrics_frame("loss")
        assert len(frame) == points
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.points
    m = measure(n)
    def cell(c: _Clock) -> str:
        return f"{c.wall:.2f} s (CPU {c.cpu:.2f} s)"

    def ratio(raw: _Clock, ours: _Clock, what: str) -> str:  # > 1: runbridge is faster
        return f"{raw.wall / ours.wall:.2f}x {what} (CPU {raw.cpu / ours.cpu:.2f}x)"

    rows = [
        (f"(a) store alone: write hook, {n:,} points", cell(m["alone"]), "executemany " + cell(m["raw_ingest"]),
         ratio(m["raw_ingest"], m["alone"], "raw rate"), "≥ 1.0x"),
        (f"(b) end to end: {n:,} run.log + flush", cell(m["e2e"]), "executemany " + cell(m["raw_ingest"]),
         ratio(m["raw_ingest"], m["e2e"], "raw rate"), "≥ 1.0x"),
        (f"(b) end to end: {n:,} run.log + flush", cell(m["e2e"]),
         "loop of row appends + executemany " + cell(m["raw_script"]),
         ratio(m["raw_script"], m["e2e"], "raw rate"), "≥ 1.0x"),
        (f"(c) get_metrics(name) of {n:,} points (Run by id)", cell(m["read"]), "SELECT " + cell(m["raw_read"]),
         ratio(m["raw_read"], m["read"], "raw speed"), "≤ 0.25 s, ≥ 4x"),
        (f"(c) get_metrics() of {n:,} points (Run by id)", cell(m["read_all"]), "SELECT " + cell(m["raw_read"]),
         ratio(m["raw_read"], m["read_all"], "raw speed"), "≤ 0.25 s, ≥ 4x"),
        (f"(d) get_metrics_frame() of {n:,} points", cell(m["frame"]), "read_sql " + cell(m["raw_frame"]),
         ratio(m["raw_frame"], m["frame"], "raw speed"), ""),
    ]
    print_table(("measure", "runbridge", "plain table", "ratio", "target"), rows)


if __name__ == "__main__":
    main()

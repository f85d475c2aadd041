"""The built-in SQLite store against a plain SQLite table (README, Performance), in one run.

    python tests/benchmarks/bench_store.py [--points 1000000]

The anchor is what a person would write without runbridge: ``executemany`` of
``(run, name, step, value, time)`` rows into a plain table without indexes, in one transaction,
and a ``SELECT`` / ``pandas.read_sql`` of those rows back.

(a) the store alone: N points of one metric handed to the backend's write hook in batches of
    10,000 (what the writer thread does), vs the raw executemany of the same N points;
(b) end to end: N run.log calls + flush, vs the same raw executemany (the script's loop counted
    on runbridge's side only, so this ratio is harder than the issue's);
(c) get_metrics() of the N points (a Run opened by id in a fresh workspace), vs a raw SELECT of one
    row per point;
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

BATCH = 10_000


def _raw(tmp: str, points: int, t0: int) -> dict[str, float]:
    conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE points (run TEXT, name TEXT, step INTEGER, value REAL, time INTEGER)")
    rows = [("r1", "loss", i, i * 0.001, t0 + i) for i in range(points)]
    gc.collect()
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    ingest = time.perf_counter() - t
    del rows
    query = "SELECT name, step, value, time FROM points WHERE run = 'r1' AND name = 'loss'"
    t = time.perf_counter()
    got = conn.execute(query).fetchall()
    read = time.perf_counter() - t
    assert len(got) == points
    del got
    import pandas as pd

    t = time.perf_counter()
    frame = pd.read_sql(query, conn)
    frame_s = time.perf_counter() - t
    assert len(frame) == points
    conn.close()
    return {"ingest": ingest, "read": read, "frame": frame_s}


def _store_alone(tmp: str, points: int, t0: int) -> float:
    backend = Workspace(backends=[f"sqlite:{tmp}/alone.db"]).backends[0]
    info = RunInfo("alone", "bench", start_time=t0)
    backend.start_run(info)
    batches = [[Metric("loss", i, i * 0.001, i, t0 + i, False, "", "w")
                for i in range(start, min(start + BATCH, points))] for start in range(0, points, BATCH)]
    gc.collect()
    t = time.perf_counter()
    for batch in batches:
        backend.write(info, batch)
    return time.perf_counter() - t


def measure(points: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = now_us()
        out.update({f"raw_{k}": v for k, v in _raw(tmp, points, t0).items()})
        out["alone"] = _store_alone(tmp, points, t0)
        spec = f"sqlite:{tmp}/runs.db"
        run = Experiment(Workspace(backends=[spec]), "bench").start_logging(outputs=None)
        log = run.log
        gc.collect()
        t = time.perf_counter()
        for i in range(points):
            log("loss", i * 0.001, step=i)
        run.flush()
        out["e2e"] = time.perf_counter() - t
        run.complete()
        run_id = run.id

        t = time.perf_counter()
        values = Run(Experiment(Workspace(backends=[spec]), "bench"), run_id).get_metrics("loss")["loss"]
        out["read"] = time.perf_counter() - t
        assert len(values) == points
        del values
        t = time.perf_counter()
        frame = Run(Experiment(Workspace(backends=[spec]), "bench"), run_id).get_metrics_frame("loss")
        out["frame"] = time.perf_counter() - t
        assert len(frame) == points
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.points
    m = measure(n)
    rows = [
        (f"(a) store alone: write hook, {n:,} points", f"{m['alone']:.2f} s ({n / m['alone'] / 1e3:,.0f}k/s)",
         f"executemany {m['raw_ingest']:.2f} s ({n / m['raw_ingest'] / 1e3:,.0f}k/s)",
         f"{m['raw_ingest'] / m['alone']:.2f}x raw rate", "≥ 1.0x"),
        (f"(b) end to end: {n:,} run.log + flush", f"{m['e2e']:.2f} s ({n / m['e2e'] / 1e3:,.0f}k/s)",
         f"executemany {m['raw_ingest']:.2f} s", f"{m['raw_ingest'] / m['e2e']:.2f}x raw rate", "≥ 1.0x"),
        (f"(c) get_metrics() of {n:,} points", f"{m['read']:.2f} s", f"SELECT {m['raw_read']:.2f} s",
         f"{m['raw_read'] / m['read']:.2f}x raw speed", "≤ 0.25 s, ≥ 4x"),
        (f"(d) get_metrics_frame() of {n:,} points", f"{m['frame']:.2f} s", f"read_sql {m['raw_frame']:.2f} s",
         f"{m['raw_frame'] / m['frame']:.2f}x raw speed", ""),
    ]
    headers = ("measure", "runbridge", "plain table", "ratio", "target")
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(5)]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


if __name__ == "__main__":
    main()

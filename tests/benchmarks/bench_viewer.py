"""Viewer benchmarks (README, Performance): how long the pages of big stores take, against reading
the same data through the backend alone, measured in the same run.

    python tests/benchmarks/bench_viewer.py [--runs 10000] [--points 1000000] [--compare 100] [--repeat 2]

(a) the runs page of an experiment with --runs runs (3 metrics of 10 points each): the first page
    (50 rows), and the page sorted by a metric (which reads every run), against the backend's
    `list_runs` and against `read` of every run;
(b) the run page of a run with one --points-point metric, against `get_metrics()` of that run
    (the backend's `read` hook plus the azureml shapes) and the `read` hook alone; the page's size
    shows what is shipped (a min/max reduction, not the points);
(c) the compare page of --compare runs of 1,000 points each, against `read` of those runs.
Pages are fetched with Flask's test client (no network); the built-in SQLite store; best of
--repeat. Ratio = page / anchor (how many times the anchor the page takes). Not a test.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from markdown_table import print_table  # noqa: E402

from runbridge import Experiment, Run, Workspace  # noqa: E402
from runbridge.backends import open_backend  # noqa: E402
from runbridge.records import COMPLETED, Metric, RunInfo, new_writer_id, now_us  # noqa: E402
from runbridge.viewer.app import create_app  # noqa: E402


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _write_runs(spec: str, experiment: str, runs: int, names: list[str], points: int) -> list[str]:
    """`runs` finished runs written through the backend's hooks (fast), `points` points per name."""
    backend = open_backend(spec)
    ids, t0 = [], now_us()
    for r in range(runs):
        info = RunInfo(f"{experiment}_{r:06d}", experiment, f"run {r}", None, "Running", t0 + r)
        backend.start_run(info)
        writer = new_writer_id()
        for name in names:
            for start in range(0, points, 100_000):
                backend.write(info, [Metric(name, i, ((i * 7919 + r) % 1000) / 1000, i, t0 + i, False, "", writer)
                                     for i in range(start, min(points, start + 100_000))])
        info = info._replace(status=COMPLETED, end_time=t0 + r + 1000)
        backend.end_run(info, COMPLETED)
        ids.append(info.run_id)
    return ids


def _get(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(response.data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--compare", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    spec = f"sqlite:{tmp / 'runs.db'}"
    t = time.perf_counter()
    many = _write_runs(spec, "many", args.runs, ["loss", "acc", "lr"], 10)
    (long_id,) = _write_runs(spec, "long", 1, ["signal"], args.points)
    compared = _write_runs(spec, "cmp", args.compare, ["loss"], 1000)
    print(f"stores written in {time.perf_counter() - t:.1f} s under {tmp}\n", flush=True)

    ws = Workspace(backends=[spec])
    backend = ws.backends[0]
    client = create_app(ws).test_client()
    rows = []

    def row(what: str, page: float, size: int, anchor_name: str, anchor: float) -> None:
        rows.append([what, f"{page:.3f} s", f"{size:,} B", anchor_name, f"{anchor:.3f} s", f"{page / anchor:.2f}x"])

    size = _get(client, "/runs?experiment=many")
    first = [info.run_id for info in backend.list_runs("many")[:50]]
    row(f"(a) runs page, {args.runs:,} runs, first 50 rows",
        _best(lambda: _get(client, "/runs?experiment=many"), args.repeat), size,
        "`list_runs` + `read` of the 50 runs shown",
        _best(lambda: (backend.list_runs("many"), [backend.read("many", i) for i in first]), args.repeat))
    size = _get(client, "/runs?experiment=many&sort=metric:loss")
    row(f"(a) runs page, {args.runs:,} runs, sorted by a metric",
        _best(lambda: _get(client, "/runs?experiment=many&sort=metric:loss"), 1), size,
        "`list_runs` + `read` of every run",
        _best(lambda: (backend.list_runs("many"), [backend.read("many", i) for i in many]), 1))
    size = _get(client, f"/run?id={long_id}")
    run = Run(Experiment(ws, "long"), long_id)
    page = _best(lambda: _get(client, f"/run?id={long_id}"), args.repeat)
    row(f"(b) run page, one metric of {args.points:,} points", page, size, "`get_metrics()` of the run",
        _best(run.get_metrics, args.repeat))
    row(f"(b) run page, one metric of {args.points:,} points", page, size, "`read` hook alone",
        _best(lambda: backend.read("long", long_id), args.repeat))
    url = "/compare?" + "&".join(f"id={i}" for i in compared)
    size = _get(client, url)
    row(f"(c) compare page, {args.compare} runs × 1,000 points", _best(lambda: _get(client, url), args.repeat), size,
        f"`read` of the {args.compare} runs", _best(lambda: [backend.read("cmp", i) for i in compared], args.repeat))
    print_table(["page", "time", "size", "anchor (same data, backend alone)", "anchor time", "ratio"], rows)


if __name__ == "__main__":
    main()

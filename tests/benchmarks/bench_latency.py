"""How soon things happen, printed as a table (the tests check only that they happen).

    python tests/benchmarks/bench_latency.py [--repeat 3]

(a) a running run's point reaching another reader, with no flush() or complete(): runbridge's
    own read and TensorBoard's EventAccumulator on a `tensorboard:<tmp>` store (the background
    flusher writes at most FLUSH_INTERVAL after a call);
(b) a run whose second backend is an MLflow server nobody listens on: start, 100 points, a tag,
    complete (the backend's /health probe fails it at once instead of MLflow's HTTP retries).
Median of --repeat runs. Not a test: machines are noisy, so it prints figures instead of asserting.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from runbridge import Experiment, Workspace
from runbridge.backends import open_backend
from runbridge.records import Metric


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def visible_after(tmp: Path, limit: float = 30.0) -> tuple[float, float]:
    """Seconds until runbridge's reader and TensorBoard's loader see a point a running run logged."""
    from runbridge_tensorboard.backend import safe_name
    from tensorboard.backend.event_processing import event_accumulator as ea

    spec = f"tensorboard:{tmp}"
    run = Experiment(Workspace(backends=[spec]), "live").start_logging(outputs=None)
    run.log("first", 1)
    run.flush()
    folder = tmp / "live" / safe_name(run.id)
    start = time.monotonic()
    run.log("live", 0.5)
    seen: dict[str, float] = {}
    while len(seen) < 2 and time.monotonic() - start < limit:
        if "runbridge" not in seen:
            found = open_backend(spec).read("live", run.id)
            records = found.records if found is not None else []
            if any(type(r) is Metric and r.name == "live" for r in records):
                seen["runbridge"] = time.monotonic() - start
        if "tensorboard" not in seen:
            acc = ea.EventAccumulator(str(folder), size_guidance={ea.TENSORS: 0})
            acc.Reload()
            if "live" in acc.Tags()["tensors"]:
                seen["tensorboard"] = time.monotonic() - start
        time.sleep(0.01)
    run.complete()
    return seen.get("runbridge", float("nan")), seen.get("tensorboard", float("nan"))


def dead_server_run(tmp: Path) -> float:
    """Seconds for a whole run when one of its two backends is an MLflow server that is not there."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    dead = f"http://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = Experiment(Workspace(backends=[f"sqlite:{tmp / 'runs.db'}", f"mlflow:{dead}"]), "dead") \
            .start_logging(outputs=None)
        for i in range(100):
            run.log("loss", i * 0.5)
        run.tag("still", "works")
        run.complete()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["RUNBRIDGE_SPOOL"] = tempfile.mkdtemp(prefix="bench-latency-spool-")
    ours, theirs, dead = [], [], []
    for i in range(args.repeat):
        a, b = visible_after(Path(tempfile.mkdtemp(prefix="bench-latency-tb-")))
        ours.append(a)
        theirs.append(b)
        dead.append(dead_server_run(Path(tempfile.mkdtemp(prefix="bench-latency-dead-"))))
    rows = [("(a) point visible to runbridge's reader, no flush", statistics.median(ours)),
            ("(a) point visible to TensorBoard's EventAccumulator, no flush", statistics.median(theirs)),
            ("(b) whole run with a dead MLflow server as second backend", statistics.median(dead))]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  {'seconds':>8}")
    print(f"{'-' * width}  {'-' * 8}")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:>8.3f}")


if __name__ == "__main__":
    main()

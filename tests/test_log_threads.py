"""`run.log` takes no lock: threads logging at once while the writer thread takes batches lose
nothing and keep each series in order (read back from the store)."""

from __future__ import annotations

import sys
import threading

from runbridge import Experiment, Run, Workspace

POINTS = 40_000


def test_threads_logging_while_the_writer_writes_lose_nothing(tmp_path):
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible: every race gets its chance
    try:
        run = Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "threads").start_logging(outputs=None)
        start = threading.Barrier(4)

        def log(name: str) -> None:
            start.wait()
            for i in range(POINTS):
                run.log(name, float(i))
                if i % 9_999 == 0:
                    run.flush()  # a flush from one thread while the others append

        threads = [threading.Thread(target=log, args=(f"loss{t}",)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        run.complete()
    finally:
        sys.setswitchinterval(interval)
    metrics = Run(run.experiment, run.id).get_metrics()
    assert sorted(metrics) == ["loss0", "loss1", "loss2", "loss3"]
    for name, values in metrics.items():
        assert values == [float(i) for i in range(POINTS)], name

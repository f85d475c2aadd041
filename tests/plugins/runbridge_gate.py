"""``gate:<folder>``: a real test backend whose writes wait while ``<folder>/closed`` exists.

It stands for a backend slower than the script (a tracking server that hangs). Every write is
appended to ``<folder>/writes.jsonl`` with the name of the thread that made it. It holds no runs
for reading (`read` returns None), so reads go to the next backend. Registered through a
test-only entry point by `install` (a ``.dist-info`` folder on the subprocess's PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from runbridge.hookspecs import hookimpl


class GateBackend:
    def __init__(self, location: str):
        self.folder = Path(location)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _wait_open(self) -> None:
        while (self.folder / "closed").exists():
            time.sleep(0.01)

    @hookimpl
    def start_run(self, run):
        pass

    @hookimpl
    def write(self, run, records):
        self._wait_open()
        with open(self.folder / "writes.jsonl", "a") as handle:
            handle.write(json.dumps({"thread": threading.current_thread().name, "records": len(records)}) + "\n")

    @hookimpl
    def end_run(self, run, status):
        pass

    @hookimpl
    def read(self, experiment, run_id):
        return None


def install(site: Path) -> dict[str, str]:
    """Register ``gate`` as a runbridge backend for subprocesses; returns their environment."""
    dist = site / "runbridge_gate-0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: runbridge-gate\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[runbridge]\ngate = runbridge_gate:GateBackend\n")
    paths = [str(site), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}

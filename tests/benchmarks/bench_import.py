"""Start-up cost (README, Performance): `import runbridge` and `runbridge --help`, printed as a table.

    python tests/benchmarks/bench_import.py [--repeat 20]

Each command runs --repeat times in a fresh interpreter of this venv, the commands taking turns;
the table gives the best and
the median wall time, and the cost above the anchor `python -c pass` measured in the same run
(interpreter start-up, site and the editable-install hooks included in the anchor). The last
column is the module's own cumulative import time reported by `python -X importtime` (best of
--repeat). Not a test: machines are noisy, so it prints figures instead of asserting times.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from markdown_table import print_table

CLI = str(Path(sys.executable).with_name("runbridge"))
COMMANDS = [
    ("python -c pass (anchor)", [sys.executable, "-c", "pass"], None),
    ("import runbridge", [sys.executable, "-c", "import runbridge"], "runbridge"),
    ("runbridge --help", [CLI, "--help"], "runbridge.cli"),
    ("from runbridge import Run (for reference)", [sys.executable, "-c", "from runbridge import Run"],
     "runbridge.run"),
]


def wall_times(repeat: int) -> dict[str, list[float]]:
    """Each command's wall times, the commands taking turns (load drifts alike for all of them)."""
    times: dict[str, list[float]] = {label: [] for label, _, _ in COMMANDS}
    for _ in range(repeat):
        for label, command, _ in COMMANDS:
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times[label].append(time.perf_counter() - start)
    return times


def import_time(module: str, repeat: int) -> float:
    """Best cumulative `-X importtime` figure of `module` (seconds), imported alone."""
    best = float("inf")
    for _ in range(repeat):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], check=True,
                             capture_output=True, text=True).stderr
        for line in err.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
            if match and match.group(2) == module:
                best = min(best, int(match.group(1)) / 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    results = wall_times(args.repeat)
    anchor = min(results[COMMANDS[0][0]])
    targets = {"import runbridge": "≤ 100 ms", "runbridge --help": "≤ 200 ms"}
    rows = []
    for label, _, module in COMMANDS:
        best, median = min(results[label]), statistics.median(results[label])
        own = f"{import_time(module, args.repeat) * 1e3:.0f} ms" if module else ""
        rows.append((label, f"{best * 1e3:.0f} ms", f"{median * 1e3:.0f} ms",
                     f"+{(best - anchor) * 1e3:.0f} ms" if module else "", own, targets.get(label, "")))
    print_table(("command", f"best of {args.repeat}", "median", "above the anchor (best)",
                 "-X importtime, cumulative", "target"), rows)


if __name__ == "__main__":
    main()

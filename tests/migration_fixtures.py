"""Helpers shared by the migration, fan-out and CLI tests: a reference run with every kind, and a
snapshot of everything a user reads back from a store."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mlflow_fixtures import mlflow_sqlite_uri
from runbridge import Experiment, Run, Workspace
from runbridge.testing import make_png

EXPERIMENT = "ref-exp"
KINDS = ("sqlite", "mlflow", "tensorboard")


def spec_for(kind: str, root: Path) -> str:
    """An empty store of `kind` under `root`."""
    if kind == "sqlite":
        return f"sqlite:{root / 'sqlite' / 'runs.db'}"
    if kind == "mlflow":
        return f"mlflow:{mlflow_sqlite_uri(root / 'mlflow')}"
    if kind == "tensorboard":
        return f"tensorboard:{root / 'tb'}"
    raise ValueError(kind)


def make_reference(spec: str, tmp: Path, experiment: str = EXPERIMENT) -> str:
    """A run with every kind of metric, tags, properties, files, a child and a failed grandchild;
    returns the top run's id."""
    ws = Workspace(backends=[spec])
    exp = Experiment(ws, experiment)
    run = exp.start_logging(display_name="the parent", outputs=None, tags={"team": "a", "empty": None})
    for i in range(5):
        run.log("loss", 1.0 / (i + 1), step=i * 10)
    run.log("count", 3)
    run.log("big", 2**62)
    run.log("nan", float("nan"))
    run.log("inf", float("-inf"))
    run.log("flag", True)
    run.log("nothing", None)
    run.log("s", "abc")
    run.log("s", "déf ✓")
    run.log_list("l", [1, 2.5, 3])
    run.log_row("r", x=1, y=0.4)
    run.log_row("r", x=2, y=0.5)
    run.log_table("t", {"a": [1, 2], "b": ["x", "y"]})
    png = tmp / "img.png"
    png.write_bytes(make_png(seed=3))
    run.log_image("roc", path=str(png))
    run.log_confusion_matrix("cm", {"schema_type": "confusion_matrix", "data": {"matrix": [[1, 2], [3, 4]]}})
    run.tag("later", "x")
    run.remove_tags("team")
    run.tag("team", "b")
    run.add_properties({"p": "1", "q": None})
    run.upload_file("notes/readme.txt", io.BytesIO(b"hello\n"))
    child = run.child_run("child one")
    child.log("acc", 0.9)
    child.log("acc", 0.95)
    grand = child.child_run("grandchild")
    grand.log("deep", 1)
    grand.fail("boom")
    child.complete()
    run.complete()
    return run.id


def snapshot(spec: str, tmp: Path, experiment: str = EXPERIMENT) -> dict[str, Any]:
    """Everything a user reads back of every run of `experiment`, by run id."""
    ws = Workspace(backends=[spec])
    exp = Experiment(ws, experiment)
    out: dict[str, Any] = {}
    for info in ws.list_runs(experiment):
        run = Run(exp, info.run_id)
        details = run.get_details()
        files = {}
        folder = tmp / f"dl-{len(list(tmp.iterdir()))}"
        for name in run.get_file_names():
            files[name] = Path(run.download_file(name, folder / name)).read_bytes()
        out[info.run_id] = {
            "metrics": run.get_metrics(recursive=True),
            "tags": run.get_tags(),
            "properties": run.get_properties(),
            "files": files,
            "status": run.get_status(),
            "display_name": run.display_name,
            "parent": info.parent_id,
            "start": details["startTimeUtc"],
            "end": details.get("endTimeUtc"),
            "error": details.get("error"),
            "info": (info.start_time, info.end_time),
        }
    return out


def record_counts(spec: str, experiment: str = EXPERIMENT) -> dict[str, int]:
    """How many records each run holds (a second migration must not change them)."""
    ws = Workspace(backends=[spec])
    return {info.run_id: len(ws.read_run(experiment, info.run_id)[1]) for info in ws.list_runs(experiment)}


def first_difference(actual: Any, expected: Any, path: str = "") -> str | None:
    """Where two snapshots differ (a short message for assertions), or None."""
    from runbridge.testing import same

    if isinstance(actual, dict) and isinstance(expected, dict):
        if list(actual) != list(expected):
            return f"{path}: keys {list(actual)[:8]} != {list(expected)[:8]}"
        for key in actual:
            found = first_difference(actual[key], expected[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        for i, (a, b) in enumerate(zip(actual, expected)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if not same(actual, expected):
        return f"{path}: {str(actual)[:200]!s} != {str(expected)[:200]!s}"
    return None


def assert_snapshots_equal(actual: dict, expected: dict) -> None:
    diff = first_difference(actual, expected)
    assert diff is None, diff

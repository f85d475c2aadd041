"""The MLflow backend seen from MLflow's side (MlflowClient, mlflow.search_runs), runs plain MLflow
wrote, a dead server, name encoding and batching limits. The contract suite (test_contract.py)
covers what runbridge reads back."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_metric_name, _validate_tag_name

# (the mlflow_server fixture comes from conftest.py)
from mlflow_fixtures import FAST_HTTP_ENV, FAST_PROBE_INTERVAL, MlflowServer, free_port, mlflow_sqlite_uri
from runbridge import Experiment, Run, Workspace
from runbridge.errors import BackendFailedWarning, RunbridgeError
from runbridge.backends import open_backend
from runbridge.records import Metric, Row, RunInfo, Tag
from runbridge.testing import make_png
from runbridge_mlflow import chunks
from runbridge_mlflow import translate as tr
from runbridge_mlflow.uri import check_scheme

REJECTED_NAMES = ["acc@1", "loss (train)", "a//b", "λ-損失", "n" * 300, "/abs", "dot/../up", "trail/"]


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    return mlflow_sqlite_uri(tmp_path / "store")


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.slow), "file"])
def tracking_uri(request, tmp_path, fast_mlflow_http, monkeypatch) -> str:
    """A tracking URI for the SQLite store, a real tracking server and the file store."""
    if request.param == "server":
        return request.getfixturevalue("mlflow_server").url
    if request.param == "file":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        return (tmp_path / "mlruns").as_uri()
    return mlflow_sqlite_uri(tmp_path / "store")


def experiment_for(uri: str, name: str) -> Experiment:
    return Experiment(Workspace(backends=[f"mlflow:{uri}"]), name)


def mlflow_run_of(client: MlflowClient, experiment: str, run_id: str):
    exp = client.get_experiment_by_name(experiment)
    [found] = client.search_runs([exp.experiment_id], filter_string=f"tags.`runbridge.run_id` = '{run_id}'")
    return found


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


# -- what an MLflow user sees ------------------------------------------------------------------
def test_mlflow_users_see_native_runs(tracking_uri: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = unique("native")
    experiment = experiment_for(tracking_uri, name)
    run = experiment.start_logging(display_name="first try", outputs=None, tags={"team": "vision"})
    for step, loss in ((0, 0.9), (10, 0.5), (20, 0.25)):
        run.log("loss", loss, step=step)
    run.log_list("acc", [1, 2, 3])
    run.log("note", "a string")
    run.add_properties({"seed": "42", "lr": "0.1"})
    run.upload_file("outputs/model.bin", io.BytesIO(b"weights"))
    (tmp_path / "roc.png").write_bytes(make_png())
    run.log_image("roc", path=str(tmp_path / "roc.png"))
    for i, precision in enumerate((0.5, 0.6, 0.7)):
        run.log_row("per_class", cls=i, precision=precision)
    run.log_table("table", {"x": [1, 2], "y": ["a", "b"]})
    child = run.child_run(name="fold-0")
    child.log("loss", 0.1)
    child.complete()
    run.complete()
    failed = experiment.start_logging(outputs=None)
    failed.fail("diverged")
    canceled = experiment.start_logging(outputs=None)
    canceled.cancel()

    client = MlflowClient(tracking_uri)
    native = mlflow_run_of(client, name, run.id)
    mid = native.info.run_id
    # run name, status, start and end times are MLflow's own fields
    info = open_backend(f"mlflow:{tracking_uri}").read(name, run.id)[0]
    assert native.info.run_name == "first try"
    assert native.info.status == "FINISHED"
    assert (native.info.start_time, native.info.end_time) == (info.start_time // 1000, info.end_time // 1000)
    assert mlflow_run_of(client, name, failed.id).info.status == "FAILED"
    assert mlflow_run_of(client, name, canceled.id).info.status == "KILLED"
    # numeric series are metric histories with their steps (step = user's step, else logging order)
    loss = client.get_metric_history(mid, "loss")
    assert [(m.step, m.value) for m in loss] == [(0, 0.9), (10, 0.5), (20, 0.25)]
    assert [(m.step, m.value) for m in client.get_metric_history(mid, "acc")] == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert "note" not in native.data.metrics  # a string is no metric in MLflow, but a tag:
    assert native.data.tags["metric.note"] == "a string"
    # tags are tags, properties are params
    assert native.data.tags["team"] == "vision"
    # (plus the one bookkeeping param of the run's writer: its timestamp lane)
    assert native.data.params == {"seed": "42", "lr": "0.1", "runbridge.writer.0": run.get_metrics_frame("loss")["writer"].iloc[0]}
    # uploads and images are artifacts under their own names
    top = {f.path for f in client.list_artifacts(mid)}
    assert {"outputs", "roc.png", "tables", "runbridge"} <= top
    assert [f.path for f in client.list_artifacts(mid, "outputs")] == ["outputs/model.bin"]
    assert Path(client.download_artifacts(mid, "outputs/model.bin", str(tmp_path))).read_bytes() == b"weights"
    # tables are MLflow table artifacts
    logged = json.loads(native.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/per_class.json", "type": "table"} in logged
    raw = json.loads(Path(client.download_artifacts(mid, "tables/per_class.json", str(tmp_path))).read_text())
    assert raw == {"columns": ["cls", "precision"], "data": [[0, 0.5], [1, 0.6], [2, 0.7]]}
    # child runs nest under their parent
    native_child = mlflow_run_of(client, name, child.id)
    assert native_child.data.tags["mlflow.parentRunId"] == mid
    assert native_child.info.run_name == "fold-0"
    # mlflow.search_runs shows metrics.<name>, params.<name>, tags.<name> columns
    mlflow.set_tracking_uri(tracking_uri)
    try:
        frame = mlflow.search_runs(experiment_names=[name])
        # (MlflowClient.load_table searches through the fluent API's tracking URI; pandas then
        # parses the JSON with its fast, not bit-exact, float reader)
        table = client.load_table(native.info.experiment_id, "tables/per_class.json", run_ids=[mid])
    finally:
        mlflow.set_tracking_uri(None)
    row = frame[frame["run_id"] == mid].iloc[0]
    assert row["metrics.loss"] == 0.25 and row["params.seed"] == "42" and row["tags.team"] == "vision"
    assert row["status"] == "FINISHED"
    assert table["precision"].tolist() == pytest.approx([0.5, 0.6, 0.7]) and table["cls"].tolist() == [0, 1, 2]
    # runbridge's bookkeeping stays hidden from runbridge users
    fresh = Run(experiment_for(tracking_uri, name), run.id)
    assert fresh.get_tags() == {"team": "vision"}
    assert fresh.get_file_names() == ["outputs/model.bin", "roc.png"]
    assert fresh.get_metrics()["per_class"] == {"cls": [0, 1, 2], "precision": [0.5, 0.6, 0.7]}


def _rest(url: str, endpoint: str, **query: str) -> Any:
    """GET an MLflow server's REST API (what the MLflow UI and any client see)."""
    with urllib.request.urlopen(f"{url}/{endpoint}?{urllib.parse.urlencode(query)}", timeout=30) as answer:
        data = answer.read()
    return json.loads(data) if endpoint.startswith("api/") else data.decode("utf-8")


@pytest.mark.slow
def test_string_metrics_have_a_native_home_on_a_live_server(mlflow_server, fast_mlflow_http) -> None:
    """A string logged once is the tag `metric.<name>`; a series of strings is the text artifact
    `metrics/<name>.txt` (one `<step>\t<value>` line each, line breaks escaped) and its tag shows
    the latest value, as the server's REST API shows them; runbridge reads back the values."""
    name = unique("strings")
    run = experiment_for(mlflow_server.url, name).start_logging(outputs=None)
    run.log("model", "ridge")
    for epoch in range(3):
        run.log("phase", f"epoch {epoch}")
    run.log("notes", "first\nline", step=10)
    run.log("notes", "back\\slash", step=20)
    run.log("loss", 0.5)
    run.complete()

    client = MlflowClient(mlflow_server.url)
    mid = mlflow_run_of(client, name, run.id).info.run_id
    tags = {t["key"]: t["value"] for t in _rest(mlflow_server.url, "api/2.0/mlflow/runs/get",
                                                  run_id=mid)["run"]["data"]["tags"]}
    assert (tags["metric.model"], tags["metric.phase"], tags["metric.notes"]) == ("ridge", "epoch 2", "back\\slash")
    listed = _rest(mlflow_server.url, "api/2.0/mlflow/artifacts/list", run_id=mid, path="metrics")
    assert sorted(f["path"] for f in listed["files"]) == ["metrics/notes.txt", "metrics/phase.txt"]
    phase = _rest(mlflow_server.url, "get-artifact", path="metrics/phase.txt", run_uuid=mid)
    assert phase == "0\tepoch 0\n1\tepoch 1\n2\tepoch 2\n"
    notes = _rest(mlflow_server.url, "get-artifact", path="metrics/notes.txt", run_uuid=mid)
    assert notes == "10\tfirst\\nline\n20\tback\\\\slash\n"
    fresh = Run(experiment_for(mlflow_server.url, name), run.id)
    assert fresh.get_tags() == {}  # the metric.* tags are metrics to runbridge users
    metrics = fresh.get_metrics()
    assert metrics["model"] == "ridge" and metrics["phase"] == ["epoch 0", "epoch 1", "epoch 2"]
    assert metrics["notes"] == ["first\nline", "back\\slash"] and metrics["loss"] == 0.5


def _documented_tags() -> set[str]:
    """The `runbridge.*` tags docs/backends.md lists in its MLflow bookkeeping table."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "backends.md").read_text(encoding="utf-8")
    section = text.split("**Bookkeeping tags**", 1)[1].split("\n\n", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {m.split("<", 1)[0] for cell in first_cells for m in re.findall(r"`(runbridge\.[^`]+)`", cell)}


def test_mlflow_users_see_only_the_documented_bookkeeping_tags(sqlite_uri: str) -> None:
    """A plain run carries three `runbridge.*` tags (its id, its microsecond start and end); a
    failed run adds its error; every `runbridge.*` tag any run carries is listed in
    docs/backends.md. Long display names and errors still read back (from the stream)."""
    documented = _documented_tags()
    plain_tags = {"runbridge.run_id", "runbridge.start_time", "runbridge.end_time"}
    assert plain_tags | {"runbridge.error", "runbridge.parent_id", "runbridge.key."} <= documented
    name = unique("tags")
    experiment = experiment_for(sqlite_uri, name)
    plain = experiment.start_logging(outputs=None)
    plain.log("loss", 0.5)
    child = plain.child_run(name="fold-0")
    child.complete()
    plain.complete()
    failed = experiment.start_logging(display_name="x" * 300, outputs=None)
    failed.log("acc@1", 1)
    failed.fail("e" * 9000)
    client = MlflowClient(sqlite_uri)

    def reserved(run_id: str) -> set[str]:
        return {k for k in mlflow_run_of(client, name, run_id).data.tags if k.startswith("runbridge.")}

    assert reserved(plain.id) == plain_tags
    assert reserved(child.id) == plain_tags  # nested by mlflow.parentRunId
    assert reserved(failed.id) == plain_tags | {"runbridge.error", f"runbridge.key.{tr.encode_key('acc@1')}"}
    for run_id in (plain.id, child.id, failed.id):
        assert all(any(k == d or (d.endswith(".") and k.startswith(d)) for d in documented) for k in reserved(run_id))
    again = Experiment(Workspace(backends=[f"mlflow:{sqlite_uri}"]), name)
    back = Run(again, failed.id)
    assert back.get_details()["error"]["error"]["message"] == "e" * 9000 and back.display_name == "x" * 300
    info = open_backend(f"mlflow:{sqlite_uri}").read(name, plain.id).info
    assert info.display_name is None and info.status == "Completed"
    assert Run(again, child.id).parent.id == plain.id


def test_values_mlflow_alters_read_back_exactly(sqlite_uri: str) -> None:
    name = unique("exact")
    experiment = experiment_for(sqlite_uri, name)
    run = experiment.start_logging(outputs=None)
    run.log("big", float("inf"))
    run.log("big", float("-inf"))
    run.log("big", float("nan"))
    run.log("count", 3)
    run.log("count", 2**53 + 1)
    run.tag("long", "y" * 9000)
    run.tag("valueless")
    run.add_properties({"long_param": "p" * 7000, "none_param": None})
    for _ in range(2):  # the same value and step twice, most likely in the same millisecond
        run.log("dup", 0.5, step=7)
    run.complete()
    client = MlflowClient(sqlite_uri)
    native = mlflow_run_of(client, name, run.id)
    history = client.get_metric_history(native.info.run_id, "big")
    assert [m.value for m in history][:2] == [1.7976931348623157e308, -1.7976931348623157e308]  # MLflow clamps
    assert len(native.data.tags["long"]) == 8000 and native.data.tags["valueless"] == ""
    dup = client.get_metric_history(native.info.run_id, "dup")
    assert len(dup) == 2 and dup[0].timestamp < dup[1].timestamp  # both kept natively too

    fresh = Run(experiment_for(sqlite_uri, name), run.id)
    metrics = fresh.get_metrics()
    assert metrics["big"][:2] == [float("inf"), float("-inf")] and math.isnan(metrics["big"][2])
    assert metrics["count"] == [3, 2**53 + 1] and all(type(v) is int for v in metrics["count"])
    assert metrics["dup"] == [0.5, 0.5]
    assert fresh.get_tags()["long"] == "y" * 9000 and fresh.get_tags()["valueless"] is None
    assert fresh.get_properties() == {"long_param": "p" * 7000, "none_param": None}


@pytest.mark.parametrize("bad", REJECTED_NAMES)
def test_encoded_keys_are_valid_mlflow_names(bad: str) -> None:
    if bad.isascii() and len(bad) <= 250:
        with pytest.raises(MlflowException):
            _validate_metric_name(bad)
    # unicode passes MLflow's validator on Linux but not everywhere (Windows file stores, other
    # tools reading the store): runbridge encodes every non-ASCII name too
    key = tr.encode_key(bad)
    _validate_metric_name(key)
    _validate_tag_name(key)
    assert key.isascii() and len(key) <= 250 and key != bad
    assert tr.encode_key(bad) == key  # deterministic
    assert tr.encode_key("train/loss") == "train/loss"  # valid names stay as they are


def test_names_mlflow_rejects(sqlite_uri: str) -> None:
    name = unique("names")
    experiment = experiment_for(sqlite_uri, name)
    run = experiment.start_logging(outputs=None)
    for i, bad in enumerate(REJECTED_NAMES):
        run.log(bad, i)
        run.log(bad, i + 0.5)
        run.tag(bad, f"t{i}")
        run.add_properties({bad: f"p{i}"})
    run.complete()
    fresh = Run(experiment_for(sqlite_uri, name), run.id)
    metrics = fresh.get_metrics()
    for i, bad in enumerate(REJECTED_NAMES):
        assert metrics[bad] == [i, i + 0.5]
        assert fresh.get_tags()[bad] == f"t{i}"
        assert fresh.get_properties()[bad] == f"p{i}"
    # MLflow holds an encoded key per name and the original in the manifest tag
    client = MlflowClient(sqlite_uri)
    native = mlflow_run_of(client, name, run.id)
    for i, bad in enumerate(REJECTED_NAMES):
        key = tr.encode_key(bad)
        assert native.data.tags[f"runbridge.key.{key}"] == bad
        assert [m.value for m in client.get_metric_history(native.info.run_id, key)] == [i, i + 0.5]
        assert native.data.params[key] == f"p{i}"
        assert native.data.tags[key] == f"t{i}"


# -- runs plain MLflow wrote -----------------------------------------------------------------
@pytest.fixture
def foreign_run(tracking_uri: str, tmp_path: Path):
    """A run written with plain MLflow: metrics with steps, params, tags, artifacts, a nested run."""
    name = unique("plain-mlflow")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        if tracking_uri.startswith("sqlite"):
            mlflow.create_experiment(name, artifact_location=(tmp_path / "plain-artifacts").as_uri())
        mlflow.set_experiment(name)
        (tmp_path / "report.txt").write_text("a report")
        with mlflow.start_run(run_name="plain") as parent:
            for step in (2, 0, 1):  # logged out of step order
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metric("final", 0.75)
            mlflow.log_param("lr", 0.01)
            mlflow.set_tag("owner", "ada")
            mlflow.log_artifact(str(tmp_path / "report.txt"), artifact_path="docs")
            mlflow.log_dict({"a": 1}, "config/params.json")
            with mlflow.start_run(run_name="nested", nested=True) as nested:
                mlflow.log_metric("inner", 5.0, step=3)
    finally:
        mlflow.set_tracking_uri(None)
    return name, parent.info.run_id, nested.info.run_id


def test_runs_plain_mlflow_wrote_are_readable(tracking_uri: str, foreign_run, tmp_path: Path) -> None:
    name, parent_id, nested_id = foreign_run
    experiment = experiment_for(tracking_uri, name)
    assert {r.id for r in experiment.get_runs(include_children=True)} == {parent_id, nested_id}
    assert [r.id for r in experiment.get_runs()] == [parent_id]
    run = Run(experiment, parent_id)
    assert run.display_name == "plain"
    assert run.get_status() == "Completed"
    assert run.get_metrics() == {"loss": [1.0, 0.5, 1.0 / 3], "final": 0.75}
    frame = run.get_metrics_frame("loss")
    assert frame["step"].tolist() == [0, 1, 2]
    assert run.get_tags() == {"owner": "ada"}
    assert run.get_properties() == {"lr": "0.01"}
    assert run.get_file_names() == ["config/params.json", "docs/report.txt"]
    assert json.loads(Path(run.download_file("config/params.json", tmp_path / "params.json")).read_text()) == {"a": 1}
    [child] = run.get_children()
    assert child.id == nested_id and child.parent.id == parent_id
    assert child.get_metrics() == {"inner": 5.0}
    assert run.get_metrics(recursive=True) == {parent_id: {"loss": [1.0, 0.5, 1.0 / 3], "final": 0.75},
                                               nested_id: {"inner": 5.0}}
    # runbridge can annotate a run plain MLflow wrote, exactly
    run.tag("reviewed")
    run.tag("owner", "grace")
    run.add_properties({"note": "n" * 7000})
    again = Run(experiment_for(tracking_uri, name), parent_id)
    assert again.get_tags() == {"owner": "grace", "reviewed": None}
    assert again.get_properties() == {"lr": "0.01", "note": "n" * 7000}
    assert again.get_file_names() == ["config/params.json", "docs/report.txt"]
    assert MlflowClient(tracking_uri).get_run(parent_id).data.tags["owner"] == "grace"


def test_plain_mlflow_additions_to_a_runbridge_run_are_read(sqlite_uri: str) -> None:
    name = unique("mixed")
    experiment = experiment_for(sqlite_uri, name)
    run = experiment.start_logging(outputs=None)
    run.log("ours", 1)
    run.complete()
    client = MlflowClient(sqlite_uri)
    mid = mlflow_run_of(client, name, run.id).info.run_id
    client.log_metric(mid, "theirs", 2.5, step=4)
    client.set_tag(mid, "added", "later")
    fresh = Run(experiment_for(sqlite_uri, name), run.id)
    assert fresh.get_metrics() == {"ours": 1, "theirs": 2.5}
    assert fresh.get_tags() == {"added": "later"}


# -- errors ------------------------------------------------------------------------------------
def test_a_dead_server_is_one_warning_and_the_run_carries_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    dead = f"http://127.0.0.1:{free_port()}"
    workspace = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}", f"mlflow:{dead}"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Experiment(workspace, "dead").start_logging(outputs=None)
        for i in range(100):
            run.log("loss", i * 0.5)
        run.tag("still", "works")
        run.complete()
    # "unreachable" is the backend's own probe answering, not MLflow's retries running out
    failures = [w for w in caught if issubclass(w.category, BackendFailedWarning)]
    assert len(failures) == 1, [str(w.message) for w in caught]
    assert dead in str(failures[0].message) and "unreachable" in str(failures[0].message)
    fresh = Run(Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "dead"), run.id)
    assert fresh.get_metrics()["loss"] == [i * 0.5 for i in range(100)]
    assert fresh.get_tags() == {"still": "works"}


@pytest.mark.slow
def test_a_server_that_goes_away_mid_run_fails_fast(tmp_path: Path, monkeypatch) -> None:
    """MLflow's default HTTP retries would block a flush for minutes; the backend's own probe of
    the server notices it is gone (one warning naming it unreachable, the other backend carries
    on). The probe interval is shortened so the test need not wait out the default 5 s."""
    for key in FAST_HTTP_ENV:
        monkeypatch.delenv(key, raising=False)  # MLflow's defaults: 7 retries with backoff
    monkeypatch.setenv("RUNBRIDGE_MLFLOW_PROBE_INTERVAL", FAST_PROBE_INTERVAL)
    server = MlflowServer(tmp_path / "server").start()
    # recorded from the start: the writer thread may meet the dead server on its own (a heartbeat)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec = f"mlflow:{server.url}"
            workspace = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}", spec])
            run = Experiment(workspace, "goes-away").start_logging(outputs=None)
            run.log("loss", 1.0)
            run.flush()
        finally:
            server.stop()
        time.sleep(float(FAST_PROBE_INTERVAL) + 0.1)  # the next call probes the server again
        run.log("loss", 2.0)
        run.flush()
        run.complete()
    failures = [w for w in caught if issubclass(w.category, BackendFailedWarning)]
    assert len(failures) == 1 and server.url in str(failures[0].message)
    assert "unreachable" in str(failures[0].message)  # the probe, not MLflow's retries, noticed
    fresh = Run(Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "goes-away"), run.id)
    assert fresh.get_metrics()["loss"] == [1.0, 2.0] and fresh.get_status() == "Completed"


def test_a_probe_interval_that_is_not_seconds_is_refused_naming_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("RUNBRIDGE_MLFLOW_PROBE_INTERVAL", "soon")
    with pytest.raises(RunbridgeError, match="RUNBRIDGE_MLFLOW_PROBE_INTERVAL='soon'"):
        Workspace(backends=[f"mlflow:http://127.0.0.1:{free_port()}"])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The `runbridge` command as a user runs it (no RUNBRIDGE_* settings of the test process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBRIDGE_")}
    return subprocess.run([sys.executable, "-m", "runbridge", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("spec, needles", [
    ("mlflow:http://127.0.0.1:{port}", ("http://127.0.0.1:{port}", "unreachable")),
    ("mlflow:nosuch://x", ("unknown tracking URI scheme 'nosuch'", "mlflow:nosuch://x")),
])
def test_a_dead_server_or_an_unknown_scheme_is_one_error_line(tmp_path: Path, spec: str, needles) -> None:
    """`runbridge runs -b mlflow:http://<closed port>` and a scheme MLflow does not know: one
    `Error:` line naming the URI or the spec, exit 1 (not MLflow's 'Model registry' message)."""
    port = free_port()
    result = _cli("runs", "-b", spec.format(port=port), cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle.format(port=port) in lines[0]
    assert "Model registry" not in result.stderr


def test_a_dead_server_is_reported_before_mlflow_is_imported(tmp_path: Path) -> None:
    """Probing the server comes first: `import mlflow` alone takes seconds, a refused connection
    does not, so the error arrives without MLflow ever being loaded."""
    code = (f"import sys; from runbridge import Workspace, Experiment\n"
            f"exp = Experiment(Workspace(backends=['mlflow:http://127.0.0.1:{free_port()}']), 'e')\n"
            "try:\n    list(exp.get_runs())\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
            "print('mlflow loaded:', 'mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300).stdout
    assert "unreachable" in out and "mlflow loaded: False" in out, out


def test_tracking_uri_schemes_mlflow_knows_are_accepted() -> None:
    for uri in ("sqlite:///x.db", "postgresql+psycopg://u:p@h/db", "mysql://h/db", "file:///tmp/m",
                "relative/mlruns", "/abs/mlruns", "databricks", "https://host", "C:\\mlruns"):
        check_scheme(uri)  # no error
    with pytest.raises(RunbridgeError, match="unknown tracking URI scheme 'ftp'.*'mlflow:ftp://h/x'"):
        Workspace(backends=["mlflow:ftp://h/x"])


# -- batching ----------------------------------------------------------------------------------
def test_log_batches_stay_within_mlflow_limits() -> None:
    metrics = [MlflowMetric(f"m{i % 7}", float(i), i, i) for i in range(2500)]
    params = [Param(f"p{i}", "v" * 6000) for i in range(250)]
    tags = [RunTag(f"t{i}", "é" * 8000) for i in range(250)]
    batches = list(tr.log_batches(metrics, params, tags))
    for m, p, t in batches:
        assert len(m) <= 1000 and len(p) <= 100 and len(t) <= 100 and len(m) + len(p) + len(t) <= 1000
        body = json.dumps({"metrics": [{"key": x.key, "value": x.value, "timestamp": x.timestamp, "step": x.step}
                                       for x in m],
                           "params": [{"key": x.key, "value": x.value} for x in p],
                           "tags": [{"key": x.key, "value": x.value} for x in t]})
        assert len(body.encode()) < 1_000_000
    assert [x for b in batches for x in b[0]] == metrics
    assert [x for b in batches for x in b[1]] == params
    assert [x for b in batches for x in b[2]] == tags


def test_native_order_is_kept_without_drifting_timestamps() -> None:
    """MLflow orders a history by (timestamp, step, value) and drops exact repeats: (timestamp,
    step) stays strictly increasing per name, and timestamps move only where a step repeats."""
    state = tr.RunState()
    t = 1_700_000_000_000_000
    ms = t // 1000
    stepped = tr.translate_batch([Metric("a", i, 1.0, i, t) for i in range(5)], state)
    assert [(m.timestamp, m.step) for m in stepped.metrics] == [(ms, i) for i in range(5)]  # no drift
    same_step = tr.translate_batch([Metric("b", i, 0.5, 7, t) for i in range(3)], state)
    lane = tr.LANES  # a repeated step moves on by one turn of the lanes
    assert [(m.timestamp, m.step) for m in same_step.metrics] == [(ms, 7), (ms + lane, 7), (ms + 2 * lane, 7)]
    back = tr.translate_batch([Metric("b", 3, 0.5, 2, t)], state)  # a step going back, next flush
    assert [(m.timestamp, m.step) for m in back.metrics] == [(ms + 3 * lane, 2)]
    unstepped = tr.translate_batch([Metric("c", i, 1.0, None, t) for i in range(3)], state)
    assert [(m.timestamp, m.step) for m in unstepped.metrics] == [(ms, 0), (ms, 1), (ms, 2)]  # step = seq


def test_writers_of_one_run_never_share_a_native_timestamp() -> None:
    """Ranks logging the same value at the same step at the same instant: MLflow's SQL store would
    keep one of them; each writer's lane gives it timestamps of its own, at most LANES - 1 ms late."""
    t = 1_700_000_000_000_123  # not on a lane boundary
    state = tr.RunState(lanes={f"rank{r}": r for r in range(4)})
    points = [Metric("loss", i, 0.5, i, t, writer=f"rank{r}") for i in range(3) for r in range(4)]
    native = tr.translate_batch(points, state).metrics
    keys = {(m.timestamp, m.step, m.value) for m in native}
    assert len(keys) == len(points)
    assert {m.timestamp % tr.LANES for m in native} == {0, 1, 2, 3}
    assert all(0 <= m.timestamp - t // 1000 < tr.LANES for m in native)


def test_big_writes_are_batched_and_each_flush_adds_one_chunk(sqlite_uri: str) -> None:
    """Every write call becomes <=1000-metric log_batch calls and one new stream chunk; rows are
    never re-written (each chunk holds only its own flush)."""
    backend = open_backend(f"mlflow:{sqlite_uri}")
    t0 = 1_700_000_000_000_000
    info = RunInfo("batched", "batching", "b", None, "Running", t0)
    backend.start_run(info)
    flushes = 4
    for f in range(flushes):
        records = [Metric("x", f * 2500 + i, float(i), None, t0 + f * 10_000 + i) for i in range(2500)]
        records += [Row("rows", f * 10 + i, (("i", f * 10 + i),), t0 + f * 10_000 + 5000 + i) for i in range(10)]
        backend.write(info, records)
    backend.end_run(info._replace(status="Completed", end_time=t0 + 99_999), "Completed")
    client = MlflowClient(sqlite_uri)
    native = mlflow_run_of(client, "batching", "batched")
    assert len(client.get_metric_history(native.info.run_id, "x")) == flushes * 2500
    chunks = client.list_artifacts(native.info.run_id, "runbridge/records")
    assert len(chunks) == flushes
    rows_per_chunk = []
    for chunk in chunks:
        lines = Path(client.download_artifacts(native.info.run_id, chunk.path)).read_text().splitlines()
        rows_per_chunk.append(sum(1 for line in lines if json.loads(line)["type"] == "Row"))
    assert rows_per_chunk == [10] * flushes
    records = open_backend(f"mlflow:{sqlite_uri}").read("batching", "batched").records
    assert [r.cells[0][1] for r in records if type(r) is Row] == list(range(0, 40))


# -- portal url ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_portal_url_opens_the_mlflow_ui(mlflow_server, fast_mlflow_http) -> None:
    name = unique("url")
    run = experiment_for(mlflow_server.url, name).start_logging(outputs=None)
    run.complete()
    native = mlflow_run_of(MlflowClient(mlflow_server.url), name, run.id)
    url = run.get_portal_url()
    assert url == f"{mlflow_server.url}/#/experiments/{native.info.experiment_id}/runs/{native.info.run_id}"
    with urllib.request.urlopen(url.split("#")[0], timeout=10) as response:
        assert response.status == 200


def test_a_long_run_is_read_from_one_snapshot(tracking_uri: str) -> None:
    """A run flushed many times gets, when it ends, a snapshot of its whole stream (chunks stay);
    reads then fetch the snapshot plus any later chunk (a tag set after the end)."""
    backend = open_backend(f"mlflow:{tracking_uri}")
    t0 = 1_700_000_000_000_000
    experiment = unique("snapshot")
    info = RunInfo("long-run", experiment, "long", None, "Running", t0)
    backend.start_run(info)
    flushes = chunks.SNAPSHOT_MIN_CHUNKS + 3
    for f in range(flushes):
        backend.write(info, [Metric("x", f * 3 + i, f * 3 + i, None, t0 + f * 3 + i) for i in range(3)])
    backend.write(info, [Row("t", 0, (("a", 1),), t0 + 999)])
    ended = info._replace(status="Completed", end_time=t0 + 10_000)
    backend.end_run(ended, "Completed")
    late = Tag("late", "after the snapshot", t0 + 20_000)
    backend.write(ended, [late])
    client = MlflowClient(tracking_uri)
    mid = mlflow_run_of(client, experiment, "long-run").info.run_id
    assert len(client.list_artifacts(mid, "runbridge/snapshots")) == 1
    assert len(client.list_artifacts(mid, "runbridge/records")) == flushes + 2  # every chunk kept
    got = open_backend(f"mlflow:{tracking_uri}").read(experiment, "long-run")
    assert got.info == ended
    assert [r.value for r in got.records if type(r) is Metric] == list(range(flushes * 3))
    assert [r for r in got.records if type(r) is Row] == [Row("t", 0, (("a", 1),), t0 + 999)]
    assert got.records[-1] == late


def test_a_backend_reading_a_run_again_sees_what_was_written_since(sqlite_uri: str) -> None:
    """Decoded chunks are kept between reads (chunks are never rewritten), yet every read lists
    the stream again: a second read through the same backend has the points written since."""
    backend = open_backend(f"mlflow:{sqlite_uri}")
    t0 = 1_700_000_000_000_000
    info = RunInfo("again", "reread", None, None, "Running", t0)
    backend.start_run(info)
    backend.write(info, [Metric("x", i, i * 0.5, i, t0 + i) for i in range(1000)])
    first = backend.read("reread", "again").records
    backend.write(info, [Metric("x", 1000, "late", None, t0 + 2000), Tag("k", "v", t0 + 2001)])
    second = backend.read("reread", "again").records
    assert [r.value for r in first if type(r) is Metric] == [i * 0.5 for i in range(1000)]
    assert [r.value for r in second if type(r) is Metric] == [i * 0.5 for i in range(1000)] + ["late"]
    assert [r for r in second if type(r) is Tag] == [Tag("k", "v", t0 + 2001)]


def test_the_stream_keeps_metrics_in_columns_and_reads_back_exactly() -> None:
    """A chunk holds consecutive metrics as one line of columns and every other record as the
    core's exact JSON line; every value reads back exactly, and chunks of one `record_to_json`
    line per record (as earlier versions wrote them) still read."""
    from runbridge.records import File, Image, Property, record_from_json, record_to_json
    from runbridge.testing import EXACT_VALUES, same

    t0 = 1_700_000_000_000_000
    metrics = [Metric("m", i, v, i if i % 2 else None, t0 + i, bool(i % 3), "d" if i == 1 else "",
                      "w2" if i % 5 == 0 else "w1")
               for i, v in enumerate([*EXACT_VALUES, 2**80, -(2**70), "text", None, True])]
    others = [Row("r", 0, (("a", float("nan")), ("b", None), ("c", "x")), t0, True, "rows"),
              Image("i", 0, "i.png", "image/png", t0, 3, None, "img"), Tag("t", None, t0, True),
              Property("p", "v", t0), File("f/g.bin", 3, "abc", t0),
              RunInfo("id", "exp", None, None, "Failed", t0, t0 + 1, "e" * 9000)]
    records = [*metrics, *others, *metrics[:3]]
    data = chunks.encode_chunk(records)
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == 1 + len(others) + 1  # metrics: one line per run of consecutive metrics
    block = json.loads(lines[0])
    assert block["type"] == "PackedMetrics" and block["seq"].startswith("i8:")  # seqs: packed int64
    for line, rec in zip(lines[1:-1], others):  # each other line is the core's exact JSON form
        assert json.loads(line) == json.loads(record_to_json(rec))
        assert same(tuple(record_from_json(line)), tuple(rec))
    back = chunks.decode_chunk(data)
    assert len(back) == len(records) and all(same(tuple(a), tuple(b)) for a, b in zip(back, records))
    assert all(type(a) is type(b) for a, b in zip(back, records))
    old_format = "\n".join(record_to_json(r) for r in records).encode("utf-8") + b"\n"
    assert all(same(tuple(a), tuple(b)) for a, b in zip(chunks.decode_chunk(old_format), records))
    covered, snap = chunks.decode_snapshot(chunks.encode_snapshot(["c1", "c2"], records))
    assert covered == {"c1", "c2"} and all(same(tuple(a), tuple(b)) for a, b in zip(snap, records))


def test_packed_columns_keep_every_value_and_type_and_older_blocks_still_read() -> None:
    """Columns of only floats or only 64-bit ints are stored packed, bit for bit; anything else
    (bools, ints beyond 64 bits, mixed kinds) stays a JSON list; a block of JSON lists, as
    earlier versions wrote, reads back the same."""
    import json
    import math
    import struct

    from runbridge_mlflow import chunks

    t0 = 1_700_000_000_000_000
    floats = [0.1, -0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan, 1 / 3]
    cases = {
        "floats": ([("f", i, v, None, t0 + i, False, "", "") for i, v in enumerate(floats)],
                   {"value": "f8:", "step": "nil:", "time": "i8:", "seq": "i8:"}),
        "int64 edges": ([("i", i, v, i, t0, False, "", "") for i, v in enumerate([2**63 - 1, -2**63, 0, 7])],
                        {"value": "i8:", "step": "i8:"}),
        "beyond int64": ([("i", i, v, None, t0, False, "", "") for i, v in enumerate([2**63, 1])], {"value": list}),
        "bools": ([("b", i, v, None, t0, False, "", "") for i, v in enumerate([True, False])], {"value": list}),
        "mixed": ([("m", i, v, i if i else None, t0, False, "", "") for i, v in enumerate([1, 2.5, True])],
                  {"value": list, "step": list}),
    }
    for label, (points, expected) in cases.items():
        data = chunks.encode_points(points)
        block = json.loads(data)
        for column, kind in expected.items():
            got = block[column]
            assert (type(got) is list) if kind is list else got.startswith(kind), (label, column, got)
        back = chunks.decode_chunk(data)
        assert len(back) == len(points)
        for got, want in zip(back, points):
            value = want[2]
            assert type(got.value) is type(value), label
            if type(value) is float:  # the same bits: -0.0, subnormal, NaN, ±inf included
                assert struct.pack("<d", got.value) == struct.pack("<d", value), label
            else:
                assert got.value == value, label
            assert (got.name, got.seq, got.step, got.time) == (want[0], want[1], want[3], want[4])
    # a block of plain JSON lists (written before packing) still reads
    old = {"type": "Metrics", "series": [["loss", "w"]], "seq": [0, 1], "value": [0.5, None], "step": [None, 3],
           "time": [t0, t0 + 1], "float": [[1, "nan"]], "list": [1], "desc": [[0, "d"]]}
    back = chunks.decode_chunk(json.dumps(old).encode())
    assert [tuple(m)[:3] for m in back][0] == ("loss", 0, 0.5) and math.isnan(back[1].value)
    assert [(m.step, m.time, m.from_list, m.description, m.writer) for m in back] == [
        (None, t0, False, "d", "w"), (3, t0 + 1, True, "", "w")]


def test_file_names_with_url_characters(tracking_uri: str, tmp_path: Path) -> None:
    names = ["a b.txt", "q?x.txt", "h#.txt", "pct%20.txt", "semi;colon.txt", "日本/データ.txt"]
    experiment = experiment_for(tracking_uri, unique("ünï 実験 #1?"))
    run = experiment.start_logging(outputs=None)
    for name in names:
        run.upload_file(name, io.BytesIO(name.encode()))
    run.complete()
    fresh = Run(experiment_for(tracking_uri, experiment.name), run.id)
    assert fresh.get_file_names() == sorted(names)
    for i, name in enumerate(names):
        assert Path(fresh.download_file(name, tmp_path / "out" / str(i))).read_bytes() == name.encode()

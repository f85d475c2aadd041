"""The viewer over real stores, as a user sees it through HTTP (Flask's test client): the built-in
SQLite store, a folder tensorboardX wrote and a plain MLflow store side by side; the values on
each page; names escaped; downloads by the safe-name rules only; no request writes. Also the
report, `runbridge plot`, `run.plot()` and the notebook view."""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_fixtures import mlflow_sqlite_uri
from runbridge import Experiment, Run, ScriptRunConfig, Workspace
from runbridge.charts import charts, json_view
from runbridge.reduce import minmax
from runbridge.viewer.app import create_app

SCRIPT_NAME = "<script>alert(1)</script>"
CONFUSION = {"schema_type": "confusion_matrix",
             "data": {"class_labels": ["cat", "dog"], "matrix": [[7, 1], [2, 9]]}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One store of each kind, each holding runs of experiment 'viewer' the others do not."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    import tensorboardX
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("stores")
    sqlite = f"sqlite:{root / 'runs.db'}"
    ws = Workspace(backends=[sqlite])
    exp = Experiment(ws, "viewer")
    parent = exp.start_logging(display_name="every kind", outputs=None)
    parent.log("accuracy", 0.9375)
    for step, loss in enumerate([0.75, 0.5, 0.3125]):
        parent.log("loss", loss, step=step)
    parent.log("model", "ridge-regressor")
    parent.log(SCRIPT_NAME, 4242)
    for x in (1, 2, 3):
        parent.log_row("Y over X", x=x, y=x * 0.5)
    parent.log_table("people", {"name": ["ann", "bob"], "age": [31, 42]})
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    parent.log_image("ROC", plot=fig)
    parent.log_confusion_matrix("confusion", CONFUSION)
    parent.tag("selected", "yes")
    parent.add_properties({"author": "tester"})
    model = root / "model.pkl"
    model.write_bytes(b"pretend model bytes")
    parent.upload_file("outputs/model.pkl", str(model))
    child = parent.child_run(name="the child")
    child.log("loss", 0.25)
    child.complete()
    parent.complete()
    failed = exp.start_logging(display_name="broken", outputs=None)
    failed.log("loss", 0.875)
    failed.fail("it broke on purpose")
    running = exp.start_logging(display_name="still going", outputs=None)
    running.log("loss", 0.5)
    running.flush()

    tb = root / "tb"
    writer = tensorboardX.SummaryWriter(str(tb / "viewer" / "tbrun"))
    for step in range(4):
        writer.add_scalar("tb_loss", 0.5 ** (step + 1), step)
    writer.close()

    mlflow_uri = mlflow_sqlite_uri(root / "mlflow")
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment_id = client.create_experiment("viewer")
    mlf = client.create_run(experiment_id, run_name="plain mlflow")
    for step, value in enumerate([0.5, 0.75, 0.875]):
        client.log_metric(mlf.info.run_id, "mlf_acc", value, step=step)
    client.set_terminated(mlf.info.run_id)

    yield {"root": root, "specs": [sqlite, f"tensorboard:{tb}", f"mlflow:{mlflow_uri}"], "parent": parent.id,
           "child": child.id, "failed": failed.id, "running": running.id, "tb": "tbrun",
           "mlflow": mlf.info.run_id}
    running.complete()


@pytest.fixture
def client(stores):
    return create_app(Workspace(backends=stores["specs"])).test_client()


def text_of(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_runs_page_is_the_union_of_every_backend(client, stores):
    page = client.get("/runs?experiment=viewer&per=100")
    assert page.status_code == 200
    for key in ("parent", "child", "failed", "running", "tb", "mlflow"):
        assert f"run?id={stores[key]}" in page.text
    shown = text_of(page.text)
    # Last values: the built-in store's, TensorBoard's (float32 0.0625 is exact) and MLflow's.
    assert re.search(rf"{stores['parent']} every kind viewer Completed .* 0\.3125", shown)
    assert "0.0625" in shown and "0.875" in shown
    assert "tensorboard:" in shown and "mlflow:sqlite" in shown  # the "held by" column
    assert "selected=yes" in shown
    assert f"{stores['child']} child of {stores['parent']}" in shown


def test_runs_page_filters_sorts_pages_and_shows_min_max(client, stores):
    failed = client.get("/runs?experiment=viewer&status=Failed").text
    assert stores["failed"] in failed and stores["parent"] not in failed
    tagged = client.get("/runs?experiment=viewer&tag=selected%3Dyes").text
    assert stores["parent"] in tagged and stores["failed"] not in tagged
    named = client.get("/runs?q=still+going").text
    assert stores["running"] in named and stores["failed"] not in named
    by_loss = text_of(client.get("/runs?experiment=viewer&sort=metric:loss&desc=0").text)
    order = [by_loss.index(stores[k]) for k in ("child", "running", "failed")]
    assert order == sorted(order)  # 0.25 < 0.5 < 0.875
    first, second = (text_of(client.get(f"/runs?experiment=viewer&per=1&page={n}").text) for n in (1, 2))
    assert "page 1 of 6" in first and "page 2 of 6" in second
    stats = text_of(client.get("/runs?experiment=viewer&stats=1&q=every").text)
    assert "loss min" in stats and re.search(r"0\.3125 0\.3125 0\.75", stats)


def test_bad_query_arguments_are_named(client):
    for url, name in (("/runs?page=x", "page"), ("/runs?per=0", "per"), ("/runs?status=Sleeping", "status"),
                      ("/runs?sort=color", "sort"), ("/run", "id"), ("/compare", "id")):
        page = client.get(url)
        assert page.status_code == 400 and f"query argument '{name}'" in html.unescape(page.text), url
    assert client.get("/run?id=no-such-run").status_code == 404


def test_the_run_page_draws_every_metric_by_the_studio_rules(client, stores):
    page = client.get(f"/run?id={stores['parent']}")
    assert page.status_code == 200
    kinds = {html.unescape(name): kind for kind, name in
             re.findall(r'<section class="metric" data-kind="(\w+)">\s*<h3>(.*?) <span', page.text)}
    assert kinds == {"accuracy": "value", "loss": "line", "model": "text", SCRIPT_NAME: "value",
                     "Y over X": "xy", "people": "table", "ROC": "image", "confusion": "json"}
    shown = text_of(page.text)
    for expected in ("0.9375", "ridge-regressor", "4242", "ann 31", "bob 42", "selected yes", "author tester",
                     "outputs/model.pkl", "Completed", "the child"):
        assert expected in shown
    assert '<svg class="chart heatmap"' in page.text and ">9<" in page.text  # the confusion matrix cells
    assert re.search(r'<img class="metric-image" src="/file\?id=[^"]+name=ROC_\d+\.png"', page.text)
    assert 'http-equiv="refresh"' not in page.text
    child = client.get(f"/run?id={stores['child']}").text
    assert f"run?id={stores['parent']}" in child  # its parent, linked


def test_names_and_values_are_escaped_everywhere(client, stores):
    for url in (f"/run?id={stores['parent']}", "/runs?experiment=viewer", f"/compare?id={stores['parent']}"):
        page = client.get(url).text
        assert SCRIPT_NAME not in page and "<script" not in page
        assert html.escape(SCRIPT_NAME, quote=False) in page.replace("&#39;", "'"), url


def test_failed_and_running_runs(client, stores):
    failed = text_of(client.get(f"/run?id={stores['failed']}").text)
    assert "Failed" in failed and "it broke on purpose" in failed
    running = client.get(f"/run?id={stores['running']}").text
    assert '<meta http-equiv="refresh" content="5">' in running


def test_runs_of_other_tools_have_pages(client, stores):
    tb = text_of(client.get(f"/run?id={stores['tb']}").text)
    assert "tb_loss" in tb and "last 0.0625 · min 0.0625 · max 0.5" in tb
    mlf = text_of(client.get(f"/run?id={stores['mlflow']}").text)
    assert "mlf_acc" in mlf and "plain mlflow" in mlf and "last 0.875 · min 0.5 · max 0.875" in mlf


def test_compare_draws_a_line_per_run_and_values_side_by_side(client, stores):
    ids = [stores["parent"], stores["failed"], stores["running"]]
    page = client.get("/compare?" + "&".join(f"id={i}" for i in ids)).text
    loss = page[page.index("<h3>loss</h3>"):]
    loss = loss[:loss.index("</section>")]
    assert loss.count("<polyline") == 1  # only the parent has a loss series; the others one value
    row = {i: text_of(page[page.index(f"run?id={i}"):]).split(" ", 8) for i in ids}
    assert "0.3125" in row[stores["parent"]] and "0.875" in row[stores["failed"]]


def test_downloads_serve_run_files_by_the_safe_name_rules_only(client, stores):
    run = stores["parent"]
    ok = client.get(f"/file?id={run}&name=outputs/model.pkl")
    assert ok.status_code == 200 and ok.data == b"pretend model bytes"
    assert "attachment" in ok.headers["Content-Disposition"]
    for name in ("../runs.db", "outputs/../../runs.db", "/etc/passwd", "a\\b"):
        refused = client.get(f"/file?id={run}&name={name}")
        assert refused.status_code == 400 and "name" in html.unescape(refused.text), name
    assert client.get(f"/file?id={run}&name=outputs/other.pkl").status_code == 404
    image = client.get(client.get(f"/run?id={run}").text.split('class="metric-image" src="')[1].split('"')[0]
                       .replace("&amp;", "&"))
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")


def _snapshot(root: Path) -> dict[str, str]:
    # A SQLite WAL index (`-shm`) is shared memory every reader updates (its read marks) while a
    # writer's connection keeps it: it holds no data, so it is not part of what a store holds.
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith("-shm")}


def test_no_request_writes_to_a_store(client, stores):
    before = _snapshot(stores["root"])
    ids = [stores[k] for k in ("parent", "child", "failed", "tb", "mlflow")]
    for url in ["/", "/runs", "/runs?experiment=viewer&stats=1&sort=metric:loss", "/compare?id=" + "&id=".join(ids),
                f"/file?id={stores['parent']}&name=outputs/model.pkl"] + [f"/run?id={i}" for i in ids]:
        assert client.get(url).status_code == 200, url
    for method in (client.post, client.put, client.delete):
        assert method(f"/run?id={stores['parent']}").status_code == 405
    assert _snapshot(stores["root"]) == before


def test_a_long_series_is_drawn_reduced_with_its_spikes(tmp_path):
    ws = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"])
    run = Experiment(ws, "long").start_logging(outputs=None)
    for step in range(200_000):
        run.log("signal", 100.0 if step == 123_457 else (-50.0 if step == 7 else (step % 10) / 10), step=step)
    run.complete()
    page = create_app(ws).test_client().get(f"/run?id={run.id}").text
    points = re.search(r'<polyline[^>]*points="([^"]+)"', page).group(1).split()
    assert len(points) <= 2 * 564 + 2  # min/max per pixel bucket of the 564-pixel plot area, first and last
    assert "drawn from" in page and "of 200,000 points" in page
    ys = [float(p.split(",")[1]) for p in points]
    assert min(ys) == 12.0 and max(ys) == 224.0  # the spike up (100) and down (-50) are both drawn
    x, y = minmax(range(1_000_000), [float(i % 7) for i in range(1_000_000)], 500)
    assert len(x) <= 1002 and min(y) == 0.0 and max(y) == 6.0 and x[0] == 0 and x[-1] == 999_999


def test_charts_rules():
    from runbridge.records import Metric, Row
    recs = [Row("t", i, (("epoch", i), ("acc", i / 4)), i) for i in range(3)]
    recs += [Row("u", 0, (("epoch", 1), ("name", "x")), 0), Row("u", 1, (("epoch", 2), ("name", "y")), 1)]
    recs += [Metric("v", 0, 1.5, None, 0), Metric("w", 0, 1, None, 0), Metric("w", 1, 2, None, 1)]
    got = {c.name: (c.kind, list(c.x), list(c.y)) for c in charts(recs)}
    assert got == {"t": ("xy", [0, 1, 2], [0, 0.25, 0.5]), "u": ("table", [], []), "v": ("value", [], []),
                   "w": ("line", [0, 1], [1, 2])}
    assert json_view(b'{"schema_type": "accuracy_table", "data": {}}').kind == "text"
    assert json_view(b"{not json").kind == "text"


def test_a_script_runs_output_is_on_its_page(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text("print('hello from the script')\n")
    ws = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"])
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path / "src"), script="hello.py"))
    run.wait_for_completion()
    page = create_app(ws).test_client().get(f"/run?id={run.id}").text
    assert "hello from the script" in re.search(r'<pre class="std-log">(.*?)</pre>', page, re.S).group(1)


def runbridge_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runbridge", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_report_is_one_self_contained_file(stores, tmp_path):
    specs = [a for s in stores["specs"] for a in ("-b", s)]
    done = runbridge_cli("report", "viewer", "-o", "report.html", *specs, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text()
    assert "<script" not in page and SCRIPT_NAME not in page and "http-equiv" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    assert re.search(r'<img class="metric-image" src="data:image/png;base64,', page)
    shown = text_of(page)
    for key in ("parent", "tb", "mlflow"):
        assert f'id="run-{stores[key]}"' in page
    assert "last 0.0625" in shown and "last 0.875" in shown and "0.9375" in shown
    missing = runbridge_cli("report", "nothing-like-this", "-o", "r.html", *specs, cwd=tmp_path)
    assert missing.returncode == 1 and "nothing-like-this" in missing.stderr
    bad = runbridge_cli("report", "viewer", "-o", "r.txt", *specs, cwd=tmp_path)
    assert bad.returncode == 2 and "--output" in bad.stderr and not (tmp_path / "r.txt").exists()


def test_plot_command_and_python_plots(stores, tmp_path):
    sqlite = stores["specs"][0]
    done = runbridge_cli("plot", stores["parent"], stores["failed"], "--name", "loss", "-o", "loss.png", "-b", sqlite,
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")
    done = runbridge_cli("plot", stores["parent"], "--name", "loss", "-o", "loss.svg", "-b", sqlite, cwd=tmp_path)
    assert done.returncode == 0 and "<svg" in (tmp_path / "loss.svg").read_text()
    bad = runbridge_cli("plot", stores["parent"], "--name", "loss", "-o", "loss.gif", "-b", sqlite, cwd=tmp_path)
    assert bad.returncode == 2 and "--output" in bad.stderr
    none = runbridge_cli("plot", stores["parent"], "--name", "nope", "-o", "x.png", "-b", sqlite, cwd=tmp_path)
    assert none.returncode == 1 and "'nope'" in none.stderr and not (tmp_path / "x.png").exists()

    ws = Workspace(backends=[sqlite])
    run = Run(Experiment(ws, "viewer"), stores["parent"])
    figure = run.plot()
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["accuracy", "loss", "model", SCRIPT_NAME, "Y over X", "people", "ROC", "confusion"]
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert panels["ROC"].images and panels["confusion"].images  # the image, and the heatmap
    assert [t.get_text() for t in panels["accuracy"].texts] == ["0.9375"]
    (line,) = run.plot("loss").axes[0].get_lines()
    assert list(line.get_ydata()) == [0.75, 0.5, 0.3125]
    compare = Experiment(ws, "viewer").plot("loss", runs=[run, Run(Experiment(ws, "viewer"), stores["child"])])
    assert compare.axes[0].get_title() == "loss"
    bars = Experiment(ws, "viewer").plot("accuracy", runs=[run]).axes[0].patches
    assert [b.get_height() for b in bars] == [0.9375]
    with pytest.raises(ValueError, match="name"):
        run.plot("nope")


def test_notebook_view(stores):
    import runbridge
    ws = Workspace(backends=[stores["specs"][0]])
    run = Run(Experiment(ws, "viewer"), stores["parent"])
    frame = run._repr_html_()
    assert frame.startswith('<iframe class="runbridge-run"')  # the page's styles stay out of the notebook
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert stores["parent"] in page and "<script" not in page and "data:image/png;base64," in page
    assert html.escape(SCRIPT_NAME, quote=False) in page
    assert runbridge.RunDetails(run).get_html().count("&lt;svg") == page.count("<svg") >= 3
    shim = Path(runbridge.__file__).parent / "_azureml_shim"
    probe = subprocess.run([sys.executable, "-c", "from azureml.widgets import RunDetails; print(RunDetails.__module__)"],
                           env={"PYTHONPATH": str(shim)}, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "runbridge.viewer.widgets", probe.stderr


def test_only_run_repr_html_reaches_up_to_the_viewer():
    """The viewer is a layer above the azureml classes; `Run._repr_html_` imports it by name (the
    one upward step, README "Architecture"): no other module below the viewer names it."""
    import runbridge
    root = Path(runbridge.__file__).parent
    below = [p for p in root.rglob("*.py") if p.parts[len(root.parts)] not in ("viewer", "_azureml_shim")
             and p.name not in ("cli.py", "commands_view.py", "__init__.py", "__main__.py", "testing.py")
             or p.parent.name == "scripts"]
    naming = sorted(str(p.relative_to(root)) for p in below if "runbridge.viewer" in p.read_text())
    assert naming == ["run.py"]


def test_runbridge_ui_serves_on_loopback(stores, tmp_path):
    import time
    import urllib.request

    from mlflow_fixtures import free_port
    port = free_port()
    specs = [a for s in stores["specs"][:1] for a in ("-b", s)]
    server = subprocess.Popen([sys.executable, "-m", "runbridge", "ui", "--port", str(port), *specs], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs?experiment=viewer", timeout=5) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "runbridge ui did not answer"
                time.sleep(0.2)
        assert stores["parent"] in page and "0.3125" in page
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert f"runbridge ui on http://127.0.0.1:{port}/" in output


def test_a_running_script_runs_live_output_is_on_its_page(tmp_path):
    import time
    (tmp_path / "src").mkdir()
    flag = tmp_path / "go"
    (tmp_path / "src" / "wait.py").write_text(
        "import os, time\nprint('live line from the script', flush=True)\n"
        f"deadline = time.time() + 120\nwhile not os.path.exists({str(flag)!r}) and time.time() < deadline:\n"
        "    time.sleep(0.1)\n")
    ws = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"])
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path / "src"), script="wait.py"))
    client = create_app(ws).test_client()
    try:
        deadline = time.monotonic() + 120
        while True:
            page = client.get(f"/run?id={run.id}").text
            if "live line from the script" in page or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "live line from the script" in page and 'http-equiv="refresh"' in page
    finally:
        flag.touch()
        run.wait_for_completion()
    page = client.get(f"/run?id={run.id}").text
    assert "live line from the script" in page and 'http-equiv="refresh"' not in page


def test_the_live_output_path_read_from_a_store_is_only_the_submitters(tmp_path):
    import tempfile as tf

    from runbridge.records import Property
    from runbridge.scripts.names import LOG_PATH_PROPERTY
    from runbridge.viewer.runpage import live_log
    fake = Path(tf.mkdtemp(prefix="runbridge-")) / "std_log.txt"
    fake.write_text("ok")
    (tmp_path / "std_log.txt").write_text("not a submitter's")
    link = fake.parent.parent / f"runbridge-link-{fake.parent.name}"
    link.symlink_to(fake.parent)
    try:
        for path, expected in (("/etc/passwd", None), (str(tmp_path / "std_log.txt"), None),
                               (str(link / "std_log.txt"), None), (str(fake), fake)):
            assert live_log([Property(LOG_PATH_PROPERTY, path, 0)]) == expected, path
    finally:
        link.unlink()
        fake.unlink()
        fake.parent.rmdir()

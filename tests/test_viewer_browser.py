"""The viewer in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright)
opens the runs page, a run page and a compare page of a real store served on loopback. No console
errors, the charts are there and drawn (a screenshot that is not blank), and the text a person
reads holds the metric values and the escaped `<script>` name."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from runbridge import Experiment, Workspace
from runbridge.viewer.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_NAME = "<script>alert(1)</script>"


@pytest.fixture
def served(tmp_path):
    """A store with two runs, served by the viewer on 127.0.0.1 (a free port) for one test."""
    from werkzeug.serving import make_server

    ws = Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"])
    ids = []
    for name, scale in (("first", 1.0), ("second", 2.0)):
        run = Experiment(ws, "browser").start_logging(display_name=name, outputs=None)
        for step in range(50):
            run.log("loss", scale / (step + 1), step=step)
        run.log(SCRIPT_NAME, 4242)
        run.log("accuracy", 0.8125 * scale / 2)
        run.log_confusion_matrix("confusion", {"schema_type": "confusion_matrix",
                                               "data": {"class_labels": ["a", "b"], "matrix": [[5, 1], [0, 4]]}})
        run.complete()
        ids.append(run.id)
    server = make_server("127.0.0.1", 0, create_app(ws), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", ids
    finally:
        server.shutdown()
        thread.join(timeout=30)


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, url: str) -> tuple:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: (problems.append(f"a dialog opened: {dialog.message}"), dialog.dismiss()))
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("load")
    return page, problems


def _not_blank(page) -> int:
    """How many distinct colors the page's screenshot has (a blank page has one)."""
    from PIL import Image

    shot = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    return len(shot.getcolors(maxcolors=1 << 20) or [])


def test_runs_run_and_compare_pages_in_chromium(served, browser):
    base, (first, second) = served

    page, problems = _open(browser, f"{base}/runs?experiment=browser&stats=1")
    text = page.inner_text("body")
    assert first in text and second in text and "0.8125" in text and "0.40625" in text
    assert SCRIPT_NAME in text  # shown as text: the column header of that metric
    assert _not_blank(page) > 10
    assert problems == []

    page.click(f"text={first}")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/run?id={first}")
    charts = page.locator("svg.chart")
    assert charts.count() >= 2  # the loss line and the confusion matrix heatmap
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert page.locator("svg.chart polyline").count() == 1
    text = page.inner_text("body")
    assert SCRIPT_NAME in text and "4242" in text and "last 0.02 · min 0.02 · max 1" in text
    assert page.locator("script").count() == 0
    assert _not_blank(page) > 10
    assert problems == []

    page, problems = _open(browser, f"{base}/compare?id={first}&id={second}")
    assert page.locator("svg.chart polyline").count() == 2  # loss: a line per run
    text = page.inner_text("body")
    assert "first" in text and "second" in text and "0.8125" in text and "0.40625" in text and SCRIPT_NAME in text
    assert _not_blank(page) > 10
    assert problems == []

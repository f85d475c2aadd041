"""`import runbridge` stays light: no backend, no mlflow/tensorboard/pandas/matplotlib."""

import json
import subprocess
import sys

HEAVY = ("mlflow", "tensorboard", "tensorboardX", "pandas", "matplotlib", "numpy", "runbridge_mlflow",
         "runbridge_tensorboard", "flask", "jinja2", "werkzeug")


def test_import_runbridge_loads_no_heavy_module():
    code = ("import sys, json, runbridge\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_public_api():
    import runbridge
    for name in ("Workspace", "Experiment", "Run", "hookimpl", "RunbridgeError", "BackendFailedWarning"):
        assert name in runbridge.__all__ and hasattr(runbridge, name)


def test_import_runbridge_loads_no_viewer():
    """The viewer (and its Flask/Jinja2) loads only when asked for: `runbridge ui`, a report, a
    notebook's `_repr_html_` or `runbridge.RunDetails`."""
    code = ("import sys, json, runbridge\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('runbridge.viewer', 'runbridge.charts', "
            "'runbridge.plots', 'runbridge.reduce')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
    code = "import runbridge, sys; runbridge.RunDetails; print('runbridge.viewer.widgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "True"

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


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_runbridge_loads_only_the_errors_until_a_name_is_used():
    loaded = _modules_after("import runbridge")
    assert {"pluggy", "click", "runbridge.run", "runbridge.hookspecs", "importlib.metadata"}.isdisjoint(loaded)
    assert "runbridge.run" in _modules_after("from runbridge import Run")
    assert "pluggy" in _modules_after("from runbridge import hookimpl")


def test_runbridge_help_imports_no_command_module():
    loaded = _modules_after("import sys\nfrom runbridge.cli import main\nsys.argv = ['runbridge', '--help']\n"
                            "try:\n    main()\nexcept SystemExit:\n    pass")
    assert "click" in loaded
    assert {"pluggy", "runbridge.run", "runbridge.commands", "runbridge.cli_run"}.isdisjoint(loaded)


def test_the_command_list_shows_each_commands_own_help():
    from click.testing import CliRunner

    from runbridge.cli import COMMANDS, main

    listing = CliRunner().invoke(main, ["--help"]).output
    for name, (_, _, words) in COMMANDS.items():
        command = main.get_command(None, name)
        assert " ".join(command.help.split()).startswith(words), name
        assert name in listing


def test_import_runbridge_loads_no_viewer():
    """The viewer (and its Flask/Jinja2) loads only when asked for: `runbridge ui`, a report, a
    notebook's `_repr_html_` or `runbridge.RunDetails`."""
    viewer = {"runbridge.viewer", "runbridge.charts", "runbridge.plots", "runbridge.reduce", "flask", "jinja2"}
    assert viewer.isdisjoint(_modules_after("import runbridge"))
    assert "runbridge.viewer.widgets" in _modules_after("import runbridge\nrunbridge.RunDetails")


def test_runbridge_migrate_stays_the_function_after_its_module_is_imported():
    """`runbridge.migrate(...)` (README's example) works whatever imported `runbridge.migrate`
    the module first (sync, the CLI)."""
    code = ("import runbridge.sync, runbridge.migrate, runbridge\n"
            "print(callable(runbridge.migrate), runbridge.migrate.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "runbridge.migrate"]

"""The designer example under `runbridge run --parent`: an "Execute Python Script" step logs to
`run.parent`, the pipeline run that owns it; a top-level run's parent stays None."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runbridge import Experiment, Run, Workspace

TIMEOUT = 300

# The article's designer step, as written, and what the designer does with it: call azureml_main
# with Evaluate Model's output (one row per evaluated model).
DESIGNER_STEP = '''\
# dataframe1 contains the values from Evaluate Model
def azureml_main(dataframe1=None, dataframe2=None):
    print(f'Input pandas.DataFrame #1: {dataframe1}')

    from azureml.core import Run

    run = Run.get_context()

    # Log the mean absolute error to the parent run to see the metric in the run details page.
    # Note: 'run.parent.log()' should not be called multiple times because of performance issues.
    # If repeated calls are necessary, cache 'run.parent' as a local variable and call 'log()' on that variable.

    # Log left output port result of Evaluate Model. This also works when evaluate only 1 model.
    run.parent.log(name='Mean_Absolute_Error (left port)', value=dataframe1['Mean_Absolute_Error'][0])

    # Log right output port result of Evaluate Model.
    run.parent.log(name='Mean_Absolute_Error (right port)', value=dataframe1['Mean_Absolute_Error'][1])

    return dataframe1,


if __name__ == "__main__":
    import pandas as pd
    azureml_main(pd.DataFrame({"Mean_Absolute_Error": [1.5, 2.5]}))
'''


@pytest.fixture
def step(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evaluate_step.py").write_text(DESIGNER_STEP, encoding="utf-8")
    return tmp_path / "evaluate_step.py"


def _runbridge_run(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runbridge", "run", "-b", f"sqlite:{store}", "-e", "designer",
                           *args], capture_output=True, text=True, timeout=TIMEOUT)


def test_the_designer_step_logs_to_a_pipeline_run_named_by_parent(step, tmp_path):
    store = tmp_path / "runs.db"
    proc = _runbridge_run(store, "--parent", "my-pipeline", step.name)
    assert proc.returncode == 0, proc.stderr
    (pipeline,) = Experiment(Workspace(backends=[f"sqlite:{store}"]), "designer").get_runs()
    assert pipeline.display_name == "my-pipeline"
    assert pipeline.get_status() == "Completed"  # ended as its step did
    assert pipeline.get_metrics() == {"Mean_Absolute_Error (left port)": 1.5, "Mean_Absolute_Error (right port)": 2.5}
    (child,) = pipeline.get_children()
    assert child.get_status() == "Completed" and child.parent.id == pipeline.id
    assert child.get_metrics() == {}
    assert "Input pandas.DataFrame #1" in proc.stdout

    again = _runbridge_run(store, "--parent", pipeline.id, step.name)  # an ended pipeline takes no step
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        f"Error: --parent {pipeline.id!r} is run {pipeline.id}, which has ended (Completed): a step logs to "
        "a Running parent; name a new pipeline run instead")
    assert len(pipeline.get_children()) == 1


def test_a_step_joins_a_running_parent_given_by_id_and_leaves_it_running(step, tmp_path):
    store = tmp_path / "runs.db"
    parent = Experiment(Workspace(backends=[f"sqlite:{store}"]), "designer").start_logging(
        display_name="from a notebook", outputs=None)
    parent.flush()
    proc = _runbridge_run(store, "--parent", parent.id, step.name)
    assert proc.returncode == 0, proc.stderr
    fetched = Run(parent.experiment, parent.id)
    assert fetched.get_status() == "Running"  # its owner (this process) ends it
    assert fetched.get_metrics()["Mean_Absolute_Error (right port)"] == 2.5
    assert [c.parent.id for c in fetched.get_children()] == [parent.id]
    parent.complete()


def test_a_top_level_run_has_no_parent(step, tmp_path):
    (tmp_path / "top.py").write_text(textwrap.dedent("""\
        from azureml.core import Run
        print("parent:", Run.get_context().parent)
        """), encoding="utf-8")
    proc = _runbridge_run(tmp_path / "runs.db", "top.py")
    assert proc.returncode == 0, proc.stderr
    assert "parent: None" in proc.stdout
    failing = _runbridge_run(tmp_path / "runs.db", step.name)  # the designer step needs a parent
    assert failing.returncode == 1
    assert "'NoneType' object has no attribute 'log'" in failing.stdout + failing.stderr

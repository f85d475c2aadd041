"""Notebooks and plain scripts keep ``from azureml.core import Workspace, Experiment, Run`` after an
explicit opt-in: ``%load_ext runbridge`` in IPython, ``import runbridge.azureml`` in Python; an
installed Azure ML SDK is never shadowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from runbridge import Experiment, Workspace

# The article's notebook cells (train within a notebook), as written.
ARTICLE_CELLS = [
    """\
from azureml.core import Experiment, Run, Workspace
import azureml.core

ws = Workspace.from_config()
""",
    """\
# load diabetes dataset, a well-known small dataset that comes with scikit-learn
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.externals import joblib

X, y = load_diabetes(return_X_y = True)
columns = ['age', 'gender', 'bmi', 'bp', 's1', 's2', 's3', 's4', 's5', 's6']
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size = 0.2, random_state = 0)
data = {
   "train":{"X": X_train, "y": y_train},
   "test":{"X": X_test, "y": y_test}
}
reg = Ridge(alpha = 0.03)
reg.fit(data['train']['X'], data['train']['y'])
preds = reg.predict(data['test']['X'])
print('Mean Squared Error is', mean_squared_error(preds, data['test']['y']))
joblib.dump(value = reg, filename = 'model.pkl');
""",
    """\
# Get an experiment object from Azure Machine Learning
experiment = Experiment(workspace=ws, name="train-within-notebook")

# Create a run object in the experiment
run =  experiment.start_logging()
# Log the algorithm parameter alpha to the run
run.log('alpha', 0.03)

# Create, fit, and test the scikit-learn Ridge regression model
regression_model = Ridge(alpha=0.03)
regression_model.fit(data['train']['X'], data['train']['y'])
preds = regression_model.predict(data['test']['X'])

# Output the Mean Squared Error to the notebook and to the run
print('Mean Squared Error is', mean_squared_error(data['test']['y'], preds))
run.log('mse', mean_squared_error(data['test']['y'], preds))

# Save the model to the outputs directory for capture
model_file_name = 'outputs/model.pkl'

joblib.dump(value = regression_model, filename = model_file_name)

# upload the model file explicitly into artifacts
run.upload_file(name = model_file_name, path_or_stream = model_file_name)

# Complete the run
run.complete()
""",
]

# What the notebook's machine had and today's does not: scikit-learn dropped sklearn.externals.joblib
# (0.23) for the joblib package, and the article's notebook had made its outputs folder earlier.
ENVIRONMENT_CELL = """\
import os, sys, joblib
sys.modules["sklearn.externals.joblib"] = joblib
os.makedirs("outputs", exist_ok=True)
"""

IPYTHON_DRIVER = """\
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for cell in json.load(open(sys.argv[1])):
    result = shell.run_cell(cell)
    if not result.success:
        result.raise_error()
print("azureml.core is", shell.user_ns["azureml"].core.__file__)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBRIDGE_")}
    env["RUNBRIDGE_BACKENDS"] = f"sqlite:{tmp_path / 'runs.db'}"
    return env


def test_the_articles_notebook_cells_run_unchanged_in_ipython_after_load_ext(tmp_path):
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps([ENVIRONMENT_CELL, "%load_ext runbridge", *ARTICLE_CELLS]))
    out = subprocess.run([sys.executable, "-c", IPYTHON_DRIVER, str(cells)], cwd=tmp_path, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Mean Squared Error is" in out.stdout
    assert "_azureml_shim" in out.stdout.splitlines()[-1]
    (run,) = Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "train-within-notebook").get_runs()
    metrics = run.get_metrics()
    assert metrics["alpha"] == 0.03 and 2000 < metrics["mse"] < 5000
    assert "outputs/model.pkl" in run.get_file_names()
    assert run.get_status() == "Completed"


def test_one_import_line_lets_a_plain_script_keep_its_azureml_imports(tmp_path):
    script = textwrap.dedent("""\
        import runbridge.azureml
        from azureml.core import Workspace, Experiment, Run
        run = Experiment(Workspace.from_config(), "plain").start_logging(outputs=None)
        run.log("loss", 0.5)
        run.complete()
        """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (run,) = Experiment(Workspace(backends=[f"sqlite:{tmp_path / 'runs.db'}"]), "plain").get_runs()
    assert run.get_metrics() == {"loss": 0.5}
    without = subprocess.run([sys.executable, "-c", "from azureml.core import Run"], cwd=tmp_path,
                             env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert "No module named 'azureml'" in without.stderr  # no opt-in, no stand-in


def test_an_installed_azure_ml_sdk_is_never_shadowed(tmp_path):
    sdk = tmp_path / "site" / "azureml" / "core"  # an installed package named azureml.core
    sdk.mkdir(parents=True)
    (sdk.parent / "__init__.py").write_text("")
    (sdk / "__init__.py").write_text("WHO = 'the Azure ML SDK'\n")
    env = {**_env(tmp_path), "PYTHONPATH": str(tmp_path / "site")}
    code = ("import warnings\nwarnings.simplefilter('always')\nimport runbridge.azureml\n"
            "import azureml.core\nprint(azureml.core.WHO)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "the Azure ML SDK"
    assert "the Azure ML SDK (azureml.core) is installed: runbridge leaves it in place" in out.stderr

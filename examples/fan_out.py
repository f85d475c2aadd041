"""One run, three trackers: the built-in SQLite store, MLflow and TensorBoard at once.

    python examples/fan_out.py

The same thing without code changes: set RUNBRIDGE_BACKENDS and run any script,
    RUNBRIDGE_BACKENDS=sqlite:runs.db,mlflow:sqlite:///mlflow.db,tensorboard:tb-logs python train.py
(or `backends = [...]` in runbridge.toml). Every call goes to every backend; if one fails mid-run
(an MLflow server stops, a disk fills) the script carries on with one warning, the run is marked
incomplete for that backend (`runbridge show RUN`), and `runbridge sync` repairs it later.

Afterwards, look at the run with each tool's own viewer:
    mlflow ui --backend-store-uri sqlite:///fan_out_demo/mlflow.db
    tensorboard --logdir fan_out_demo/tb-logs
    runbridge runs --backend sqlite:fan_out_demo/runs.db
"""

import math
from pathlib import Path

from runbridge import Experiment, Run, Workspace

root = Path("fan_out_demo").resolve()
backends = [
    f"sqlite:{root / 'runs.db'}",
    f"mlflow:sqlite:///{root / 'mlflow.db'}",
    f"tensorboard:{root / 'tb-logs'}",
]
workspace = Workspace(backends=backends)
experiment = Experiment(workspace, "fan-out-demo")

with experiment.start_logging(display_name="three trackers", outputs=None) as run:
    run.tag("model", "tiny")
    run.add_properties({"lr": "0.01"})
    for epoch in range(50):
        run.log("loss", math.exp(-epoch / 10), step=epoch)
    run.log_row("eval", epoch=49, accuracy=0.93)

# Read the run back from each backend on its own: every one holds every point.
for spec in backends:
    same_run = Run(Experiment(Workspace(backends=[spec]), "fan-out-demo"), run.id)
    loss = same_run.get_metrics()["loss"]
    print(f"{spec}: loss has {len(loss)} points, last {loss[-1]:.4f}; "
          f"status {same_run.get_status()}; view: {same_run.get_portal_url()}")

"""Quickstart: log every kind of metric with the Azure ML SDK v1 API, read it back.

Runs on the embedded default store (`sqlite:.runbridge/runs.db` in the working folder); set
RUNBRIDGE_BACKENDS (e.g. `mlflow:sqlite:///mlflow.db,tensorboard:runs/tb`) to send the same calls
to other trackers, without changing a line below.
"""

import pprint
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from runbridge import Experiment, Workspace  # noqa: E402

ws = Workspace.from_config()
experiment = Experiment(ws, "quickstart")

with experiment.start_logging(display_name="every kind", outputs=None) as run:
    run.log("accuracy", 0.95)                                    # a scalar
    for epoch, loss in enumerate([0.9, 0.5, 0.3]):
        run.log("loss", loss, step=epoch)                        # repeated: a vector
    run.log("model", "ridge")                                    # a string
    run.log_list("accuracies", [0.6, 0.7, 0.87])                 # a list
    for x in range(1, 4):
        run.log_row("Y over X", x=x, y=x * 0.2 + 0.2)            # a table, row by row
    run.log_table("Y over X (table)", {"x": [1, 2, 3], "y": [0.6, 0.7, 0.89]})
    plt.plot([0, 0.2, 1], [0, 0.8, 1])
    run.log_image("ROC", plot=plt)                               # a matplotlib plot
    run.log_confusion_matrix("confusion", {"schema_type": "confusion_matrix",
                                           "data": {"class_labels": ["a", "b"], "matrix": [[5, 1], [0, 4]]}})
    run.tag("selected", "yes")
    run.add_properties({"author": "quickstart"})
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.pkl"
        model.write_bytes(b"pretend this is a model")
        run.upload_file("outputs/model.pkl", str(model))

print(f"run {run.id}: {run.get_status()}")
print("get_metrics() =")
pprint.pprint(run.get_metrics(), width=110, sort_dicts=False)
print("tags:", run.get_tags(), "properties:", run.get_properties())
print("files:", run.get_file_names())
print("view it:", run.get_portal_url())

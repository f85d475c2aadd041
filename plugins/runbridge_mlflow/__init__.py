"""The MLflow backend (extra ``runbridge[mlflow]``): ``mlflow:<tracking uri>``.

Runs are written through MLflow's own client (`MlflowClient`) so MLflow users see native metrics,
params, tags and artifacts; an exact record stream kept as reserved artifacts makes every value
read back exactly. See `runbridge_mlflow.translate` for the rules.
"""
import os

# MLflow logs INFO lines ("Creating initial MLflow database tables...") into the script's output;
# runbridge users did not ask for them. MLFLOW_LOGGING_LEVEL=INFO brings them back.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from .backend import MlflowBackend  # noqa: E402 - after choosing MLflow's logging level

__all__ = ["MlflowBackend"]

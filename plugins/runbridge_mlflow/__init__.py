"""The MLflow backend (extra ``runbridge[mlflow]``): ``mlflow:<tracking uri>``.

Runs are written through MLflow's own client (`MlflowClient`) so MLflow users see native metrics,
params, tags and artifacts; an exact record stream kept as reserved artifacts makes every value
read back exactly. See `runbridge_mlflow.translate` for the rules.
"""
from .backend import MlflowBackend

__all__ = ["MlflowBackend"]

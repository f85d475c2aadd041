"""``azureml.core`` resolved to runbridge (``runbridge run`` without the Azure ML SDK installed)."""

from runbridge.run import Experiment, Run
from runbridge.scripts.config import Environment, ScriptRunConfig

from .workspace import Workspace

__all__ = ["Run", "Experiment", "Workspace", "ScriptRunConfig", "Environment"]

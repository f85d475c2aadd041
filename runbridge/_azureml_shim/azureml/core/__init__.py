"""``azureml.core`` resolved to runbridge (``runbridge run`` without the Azure ML SDK installed)."""

from runbridge.experiment import Experiment
from runbridge.run import Run
from runbridge.submit import Environment, ScriptRunConfig

from .workspace import Workspace

__all__ = ["Run", "Experiment", "Workspace", "ScriptRunConfig", "Environment"]

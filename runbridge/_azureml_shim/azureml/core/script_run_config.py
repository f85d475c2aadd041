"""``azureml.core.script_run_config`` resolved to runbridge."""

from runbridge.submit import ScriptRunConfig

__all__ = ["ScriptRunConfig"]

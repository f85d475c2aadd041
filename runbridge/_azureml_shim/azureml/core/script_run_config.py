"""``azureml.core.script_run_config`` resolved to runbridge."""

from runbridge.scripts.config import ScriptRunConfig

__all__ = ["ScriptRunConfig"]

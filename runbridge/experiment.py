"""`Workspace` and `Experiment`, defined with `Run` in `runbridge.run` (they refer to each other);
this module keeps their historical import path."""

from .run import MAX_EXPERIMENT_NAME, Experiment, Workspace

__all__ = ["Workspace", "Experiment", "MAX_EXPERIMENT_NAME"]

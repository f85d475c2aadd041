"""``azureml.core.run`` resolved to runbridge."""

from runbridge.run import Run

__all__ = ["Run"]

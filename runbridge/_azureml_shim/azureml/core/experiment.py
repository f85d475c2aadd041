"""``azureml.core.experiment`` resolved to runbridge."""

from runbridge.run import Experiment

__all__ = ["Experiment"]

"""``azureml.core.experiment`` resolved to runbridge."""

from runbridge.experiment import Experiment

__all__ = ["Experiment"]

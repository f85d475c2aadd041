"""``azureml.widgets`` resolved to runbridge: `RunDetails(run).show()` shows the run page."""

from runbridge.viewer.widgets import RunDetails

__all__ = ["RunDetails"]

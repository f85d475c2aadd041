"""``azureml.core.environment`` resolved to runbridge (accepted and ignored: this Python runs)."""

from runbridge.scripts.config import Environment

__all__ = ["Environment"]

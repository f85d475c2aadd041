"""``azureml.core.workspace`` resolved to runbridge: Azure coordinates are accepted and ignored;
the backends come from RUNBRIDGE_BACKENDS (set by ``runbridge run``) or the configuration."""

from __future__ import annotations

from typing import Any

import runbridge.run as _rb


class Workspace(_rb.Workspace):
    """``Workspace(subscription_id, resource_group, workspace_name)``: the configured backends."""

    def __init__(self, subscription_id: Any = None, resource_group: Any = None, workspace_name: Any = None,
                 *args: Any, backends: Any = None, **kwargs: Any):
        super().__init__(backends=backends)

    @classmethod
    def get(cls, name: Any = None, *args: Any, **kwargs: Any) -> "Workspace":
        """Any named workspace: the configured backends."""
        return cls.from_config()


__all__ = ["Workspace"]

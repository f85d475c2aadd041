"""The MLflow backend (extra ``runbridge[mlflow]``): ``mlflow:<tracking uri>``.

Runs are written through MLflow's own client (`MlflowClient`) so MLflow users see native metrics,
params, tags and artifacts; an exact record stream kept as reserved artifacts makes every value
read back exactly. See `runbridge_mlflow.translate` for the rules.

`MlflowBackend` checks the URI's scheme when it opens and probes an http server before its first
call, both without MLflow; only then does it import MLflow (seconds of work) and hand every hook
to `runbridge_mlflow.backend.MlflowClientBackend`. A typo or a server that is down is reported at
once.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from typing import TYPE_CHECKING, Sequence

from runbridge.errors import BackendUnavailableError
from runbridge.hookspecs import StoreLocation, hookimpl
from runbridge.records import Record, RunInfo

from . import uri as _uri_checks

if TYPE_CHECKING:
    from .backend import MlflowClientBackend

if importlib.util.find_spec("mlflow") is None:  # the core turns this into "pip install runbridge[mlflow]"
    raise ImportError("No module named 'mlflow'", name="mlflow")

# MLflow logs INFO lines ("Creating initial MLflow database tables...") into the script's output;
# runbridge users did not ask for them. MLFLOW_LOGGING_LEVEL=INFO brings them back.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

MlflowUnreachableError = _uri_checks.MlflowUnreachableError


class MlflowBackend:
    """``mlflow:<tracking uri>``: the URI checked first, MLflow imported on the first call."""

    @staticmethod
    @hookimpl
    def store_location(location: str, base: str) -> StoreLocation:
        return _uri_checks.store_location(location, base)

    def __init__(self, location: str):
        if not location:
            raise ValueError("the mlflow backend needs a tracking URI, e.g. "
                             "'mlflow:sqlite:///mlflow.db' or 'mlflow:http://127.0.0.1:5000'")
        _uri_checks.check_scheme(location)
        self.location = location
        if _uri_checks.is_http(location):
            _uri_checks.bound_http_retries()
        #: probes an http server (the interval checked now: a bad one is a configuration error)
        self.prober = (_uri_checks.Prober(location, _uri_checks.probe_interval())
                       if _uri_checks.is_http(location) else None)
        self._impl: MlflowClientBackend | None = None
        self._opening = threading.Lock()

    def __repr__(self) -> str:
        return f"MlflowBackend({self.location!r})"

    @property
    def impl(self) -> "MlflowClientBackend":
        """The backend proper, made on first use: an http server is probed before MLflow loads."""
        if self._impl is None:
            with self._opening:
                if self._impl is None:
                    if self.prober is not None:
                        self.prober.check(force=True)
                    try:
                        from .backend import MlflowClientBackend
                    except ImportError as exc:  # MLflow is there but a part it needs is not
                        raise BackendUnavailableError(
                            f"the mlflow backend cannot be loaded because {exc}; "
                            "fix it with: pip install 'runbridge[mlflow]'") from exc
                    self._impl = MlflowClientBackend(self.location, self.prober)
        return self._impl

    @hookimpl
    def start_run(self, run: RunInfo) -> None:
        self.impl.start_run(run)

    @hookimpl
    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        self.impl.write(run, records)

    @hookimpl
    def end_run(self, run: RunInfo, status: str) -> None:
        self.impl.end_run(run, status)

    @hookimpl
    def reconcile(self, run: RunInfo) -> int:
        return self.impl.reconcile(run)

    @hookimpl
    def read(self, experiment: str, run_id: str) -> list[Record] | None:
        return self.impl.read(experiment, run_id)

    @hookimpl
    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        return self.impl.list_runs(experiment)

    @hookimpl
    def list_experiments(self) -> list[str]:
        return self.impl.list_experiments()

    @hookimpl
    def run_url(self, run: RunInfo) -> str | None:
        return self.impl.run_url(run)

    @hookimpl
    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool | None:
        return self.impl.fetch_file(run, name, destination)


__all__ = ["MlflowBackend", "MlflowUnreachableError"]

"""Backend discovery (entry-point group ``runbridge``), ``name:location`` specs, and `Backend`:
the typed facade over one backend's hooks (one method per hook; errors raise, named).

Failure isolation (a failing backend must not stop training or the other backends) is asked for
by writing through `runbridge.fanout.FanOut` instead of a `Backend` directly."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from importlib import metadata
from typing import Any, Sequence

import pluggy

from typing import Iterator

from . import hookspecs
from .errors import BackendUnavailableError, RunbridgeError
from .records import Record, RunColumns, RunInfo, RunRecords, RunSummary

ENTRY_POINT_GROUP = "runbridge"


@dataclass(frozen=True)
class BackendSpec:
    """A parsed ``name:location`` spec (``sqlite:runs.db``, ``mlflow:http://host:5000``)."""

    name: str
    location: str

    @classmethod
    def parse(cls, spec: str) -> "BackendSpec":
        if not isinstance(spec, str) or ":" not in spec:
            raise RunbridgeError(
                f"backend spec {spec!r} is not of the form 'name:location' "
                f"(for example 'sqlite:.runbridge/runs.db'); installed backends: {', '.join(installed()) or 'none'}"
            )
        name, location = spec.split(":", 1)
        name = name.strip().lower()
        if not name:
            raise RunbridgeError(f"backend spec {spec!r} has no backend name before ':'")
        return cls(name, location.strip())

    def __str__(self) -> str:
        return f"{self.name}:{self.location}"


_FOUND: dict[tuple[str, ...], dict[str, metadata.EntryPoint]] = {}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The registered backends, looked up once per import path (scanning every installed
    distribution takes tens of milliseconds, and a Workspace is opened for every read)."""
    key = tuple(sys.path)
    found = _FOUND.get(key)
    if found is None:
        found = _FOUND[key] = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return found


def installed() -> list[str]:
    """Names of the registered backends (whether or not their extra is importable)."""
    return sorted(_entry_points())


def describe_installed() -> list[dict[str, Any]]:
    """One dict per registered backend: name, target, distribution, extra, importable, error."""
    rows = []
    for name, ep in sorted(_entry_points().items()):
        row = {"name": name, "target": ep.value, "distribution": _dist_name(ep),
               "extra": _extra(ep), "importable": True, "error": ""}
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            row.update(importable=False, error=f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return rows


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"


def _extra(ep: metadata.EntryPoint) -> str | None:
    extras = list(getattr(ep, "extras", []) or [])
    return extras[0] if extras else None


def load_backend_class(name: str) -> type:
    """The backend class registered under `name`, with errors that say how to fix them."""
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; installed backends: {', '.join(sorted(eps)) or 'none'} "
            f"(a backend is a package registering an entry point in the group '{ENTRY_POINT_GROUP}')"
        )
    try:
        return ep.load()
    except ImportError as exc:
        extra = _extra(ep)
        dist = _dist_name(ep)
        fix = f"pip install '{dist}[{extra}]'" if extra else f"pip install '{dist}'"
        raise BackendUnavailableError(
            f"backend {name!r} cannot be loaded because {exc}; fix it with: {fix} "
            f"(installed backends: {', '.join(sorted(eps))})"
        ) from exc
    except Exception as exc:
        raise BackendUnavailableError(
            f"backend {name!r} ({ep.value}) is broken: {type(exc).__name__}: {exc}") from exc


_CLASS_HOOKS: dict[type, pluggy.PluginManager] = {}


def _class_hooks(cls: type) -> pluggy.PluginManager:
    """A plugin manager holding a backend *class* (not an instance), for the hooks a backend
    implements as static methods: answered without opening the backend."""
    pm = _CLASS_HOOKS.get(cls)
    if pm is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.register(cls, name=f"{cls.__module__}.{cls.__qualname__}")
        _CLASS_HOOKS[cls] = pm
    return pm


def locate(spec: str | BackendSpec, base: str | os.PathLike | None = None) -> hookspecs.StoreLocation:
    """Where the store a spec names lives: the spec's location made absolute (relative paths
    taken from `base`, default the working folder) and the local paths the store owns, as the
    backend's `store_location` hook says (as written, owning nothing, if it does not say)."""
    parsed = spec if isinstance(spec, BackendSpec) else BackendSpec.parse(spec)
    pm = _class_hooks(load_backend_class(parsed.name))
    found = pm.hook.store_location(location=parsed.location, base=str(Path(base or Path.cwd()).resolve()))
    return found if found is not None else hookspecs.StoreLocation(parsed.location)


def absolute_spec(spec: str | BackendSpec, base: str | os.PathLike | None = None) -> str:
    """The spec with its location made absolute: the same store from any working folder, and
    one spelling for two specs naming the same store."""
    parsed = spec if isinstance(spec, BackendSpec) else BackendSpec.parse(spec)
    return f"{parsed.name}:{locate(parsed, base).location}"


def open_backend(spec: str | BackendSpec) -> "Backend":
    """Instantiate the backend a spec names, in its own plugin manager, validated."""
    parsed = spec if isinstance(spec, BackendSpec) else BackendSpec.parse(spec)
    cls = load_backend_class(parsed.name)
    return Backend(parsed, cls(parsed.location))


class Backend:
    """One opened backend behind its own `pluggy.PluginManager`: one typed method per hook.

    Every method raises on failure, as a `RunbridgeError` naming the backend and the hook (the
    original exception chained). Optional hooks a backend does not implement answer as documented
    on each method.
    """

    def __init__(self, spec: BackendSpec, impl: object):
        self.spec = spec
        self.impl = impl
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        try:
            self.pm.register(impl, name=spec.name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise RunbridgeError(f"backend {spec.name!r} does not fit the hook contract: {exc}") from exc
        missing = [h for h in hookspecs.REQUIRED_HOOKS if not getattr(self.pm.hook, h).get_hookimpls()]
        if missing:
            raise RunbridgeError(f"backend {spec.name!r} does not implement the required hooks: {', '.join(missing)}")


    def __repr__(self) -> str:
        return f"<Backend {self.spec}>"

    @property
    def name(self) -> str:
        return self.spec.name

    @contextlib.contextmanager
    def _named(self, hook: str) -> Iterator[None]:
        """Re-raise a backend's error as a `RunbridgeError` that names the backend and hook."""
        try:
            yield
        except RunbridgeError:
            raise
        except Exception as exc:
            raise RunbridgeError(f"backend {self.spec} failed in {hook}: {type(exc).__name__}: {exc}") from exc

    # -- writes ------------------------------------------------------------------------------
    def start_run(self, run: RunInfo) -> None:
        with self._named("start_run"):
            self.pm.hook.start_run(run=run)

    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        with self._named("write"):
            self.pm.hook.write(run=run, records=records)

    def end_run(self, run: RunInfo, status: str) -> None:
        with self._named("end_run"):
            self.pm.hook.end_run(run=run, status=status)

    def reconcile(self, run: RunInfo) -> int:
        """Bring the backend's derived views of `run` in line with its exact records; the number
        of entries added (0 when the backend has nothing to reconcile)."""
        with self._named("reconcile"):
            return int(self.pm.hook.reconcile(run=run) or 0)

    # -- reads -------------------------------------------------------------------------------
    def read(self, experiment: str, run_id: str) -> RunRecords | None:
        """The run as this backend holds it (None if it does not): the `read` hook's list, its
        leading `RunInfo` checked and named."""
        with self._named("read"):
            got = self.pm.hook.read(experiment=experiment, run_id=run_id)
        if got is None:
            return None
        if not got or type(got[0]) is not RunInfo:
            raise RunbridgeError(f"backend {self.spec} returned run {run_id!r} without its RunInfo first "
                                 "(the read hook's contract)")
        return RunRecords(got[0], list(got[1:]))

    def implements(self, hook: str) -> bool:
        """Whether the backend implements the (optional) hook named `hook`."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def read_info(self, experiment: str, run_id: str) -> RunInfo | None:
        """The run's current `RunInfo` (None if not held): the `read_info` hook, else `read`'s."""
        if not self.implements("read_info"):
            found = self.read(experiment, run_id)
            return None if found is None else found.info
        with self._named("read_info"):
            info = self.pm.hook.read_info(experiment=experiment, run_id=run_id)
        if info is not None and type(info) is not RunInfo:
            raise RunbridgeError(f"backend {self.spec} answered read_info with a {type(info).__name__}, not a RunInfo")
        return info

    def read_metrics(self, experiment: str, run_id: str, name: str | None) -> RunColumns | None:
        """The run's metrics as columns (`read_metrics` hook); None if not held. Only for a
        backend that `implements("read_metrics")`: the others are read with `read`."""
        with self._named("read_metrics"):
            got = self.pm.hook.read_metrics(experiment=experiment, run_id=run_id, name=name)
        if got is not None and type(got) is not RunColumns:
            raise RunbridgeError(f"backend {self.spec} answered read_metrics with a {type(got).__name__}, not RunColumns")
        return got

    def summarize_runs(self, experiment: str | None) -> list[RunSummary] | None:
        """The run list with each run's numbers and tags (`summarize_runs` hook); None when the
        backend does not implement it (the caller reads each run)."""
        with self._named("summarize_runs"):
            return self.pm.hook.summarize_runs(experiment=experiment)

    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        with self._named("list_runs"):
            return self.pm.hook.list_runs(experiment=experiment) or []

    def list_experiments(self) -> list[str]:
        with self._named("list_experiments"):
            names = self.pm.hook.list_experiments()
        if names is None:
            names = sorted({r.experiment for r in self.list_runs(None)})
        return list(names)

    def run_url(self, run: RunInfo) -> str | None:
        with self._named("run_url"):
            return self.pm.hook.run_url(run=run)

    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool:
        with self._named("fetch_file"):
            return bool(self.pm.hook.fetch_file(run=run, name=name, destination=destination))

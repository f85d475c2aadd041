"""Backend discovery (entry-point group ``runbridge``), ``name:location`` specs, and the
failure-isolating `Backend` handle the front end writes through."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Sequence

import pluggy

from . import hookspecs, spool
from .errors import BackendFailedWarning, BackendUnavailableError, RunbridgeError, SpoolFailedWarning
from .records import RESERVED_PREFIX, Record, RunInfo, Tag, now_us

ENTRY_POINT_GROUP = "runbridge"
#: Reserved tag set on a run, in the healthy backends, for each backend that failed during it:
#: ``runbridge.incomplete.<label>`` = "<spec>: <error>". `runbridge sync` repairs and clears it.
INCOMPLETE_PREFIX = RESERVED_PREFIX + "incomplete."
#: Reserved tag set on a run, in the healthy backends, when the spool could not keep what a failed
#: backend missed: ``runbridge.spool_lost.<label>`` = "<spec>: <error>". Sync cannot clear it.
SPOOL_LOST_PREFIX = RESERVED_PREFIX + "spool_lost."
_MAX_ERROR_TEXT = 1000


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


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


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


def open_backend(spec: str | BackendSpec) -> "Backend":
    """Instantiate the backend a spec names, in its own plugin manager, validated."""
    parsed = spec if isinstance(spec, BackendSpec) else BackendSpec.parse(spec)
    cls = load_backend_class(parsed.name)
    return Backend(parsed, cls(parsed.location))


class Backend:
    """One opened backend behind its own `pluggy.PluginManager`.

    Writes are failure-isolated: if the backend raises while writing a run, it is disabled for
    that run with exactly one `BackendFailedWarning`, and the caller carries on (the other
    backends and the script are unaffected); the failing call and every later one for that run
    are kept in the local spool (`runbridge.spool`) for `runbridge sync`. Reads raise, wrapped
    with the backend's name.
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
        self._failed: dict[str, BaseException] = {}
        self._spool_lost: dict[str, BaseException] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Backend {self.spec}>"

    @property
    def name(self) -> str:
        return self.spec.name

    # -- writes: isolated ------------------------------------------------------------------
    def failed(self, run_id: str) -> BaseException | None:
        """The error that disabled this backend for `run_id`, if any."""
        return self._failed.get(run_id)

    def spool_lost(self, run_id: str) -> BaseException | None:
        """The error that kept the spool from keeping what this backend missed in `run_id`."""
        return self._spool_lost.get(run_id)

    def _keep(self, call: str, run: RunInfo, kwargs: dict[str, Any]) -> None:
        """Spool a missed call; a spool that cannot keep it says so, once per run."""
        try:
            spool.keep(str(self.spec), call, run, kwargs)  # kept for `runbridge sync`
        except spool.SpoolError as exc:
            with self._lock:
                first = run.run_id not in self._spool_lost
                self._spool_lost.setdefault(run.run_id, exc)
            if first:
                warnings.warn(SpoolFailedWarning(
                    f"backend {self.spec} missed records of run {run.run_id} and the local spool "
                    f"could not keep them, so `runbridge sync` cannot restore them: {exc}"), stacklevel=3)

    def _isolated(self, call: str, run: RunInfo, **kwargs: Any) -> bool:
        if run.run_id in self._failed:
            self._keep(call, run, kwargs)
            return False
        try:
            getattr(self.pm.hook, call)(run=run, **kwargs)
            return True
        except Exception as exc:  # noqa: BLE001 - any backend failure must not stop training
            self._keep(call, run, kwargs)
            with self._lock:
                first = run.run_id not in self._failed
                self._failed[run.run_id] = exc
            if first:
                warnings.warn(
                    BackendFailedWarning(
                        f"backend {self.spec} failed in {call} for run {run.run_id} and is disabled "
                        f"for that run (the other backends carry on): {type(exc).__name__}: {exc}"
                    ),
                    stacklevel=2,
                )
            return False

    def start_run(self, run: RunInfo) -> bool:
        return self._isolated("start_run", run)

    def write(self, run: RunInfo, records: Sequence[Record]) -> bool:
        return self._isolated("write", run, records=records)

    def end_run(self, run: RunInfo, status: str) -> bool:
        return self._isolated("end_run", run, status=status)

    # -- reads: errors propagate, named ------------------------------------------------------
    def _read_call(self, call: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.pm.hook, call)(**kwargs)
        except RunbridgeError:
            raise
        except Exception as exc:
            raise RunbridgeError(f"backend {self.spec} failed in {call}: {type(exc).__name__}: {exc}") from exc

    def read(self, experiment: str, run_id: str) -> list[Record] | None:
        return self._read_call("read", experiment=experiment, run_id=run_id)

    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        return self._read_call("list_runs", experiment=experiment) or []

    def list_experiments(self) -> list[str]:
        names = self._read_call("list_experiments")
        if names is None:
            names = sorted({r.experiment for r in self.list_runs(None)})
        return list(names)

    def run_url(self, run: RunInfo) -> str | None:
        return self._read_call("run_url", run=run)

    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool:
        return bool(self._read_call("fetch_file", run=run, name=name, destination=destination))


# -- several backends at once ----------------------------------------------------------------------
def incomplete_labels(backends: Sequence["Backend"]) -> list[str]:
    """The label of each backend in incomplete tags: its name, or name + position if repeated."""
    names = [b.name for b in backends]
    return [n if names.count(n) == 1 else f"{n}{i + 1}" for i, n in enumerate(names)]


def fan_out(backends: Sequence["Backend"], call: str, run: RunInfo, **kwargs: Any) -> None:
    """Make `call` (start_run, write or end_run) on every backend, failure-isolated; a backend
    that fails for the first time in this run is recorded on the run in the others as a reserved
    tag ``runbridge.incomplete.<label>`` (so `runbridge show` reports it, `runbridge sync` repairs)."""
    before = [b.failed(run.run_id) is not None for b in backends]
    lost_before = [b.spool_lost(run.run_id) is not None for b in backends]
    for backend in backends:
        getattr(backend, call)(run, **kwargs)
    _note_spool_losses(backends, run, lost_before)
    labels = None
    for _ in range(len(backends)):
        newly = [i for i, b in enumerate(backends) if not before[i] and b.failed(run.run_id) is not None]
        if not newly:
            return
        labels = labels or incomplete_labels(backends)
        for i in newly:
            before[i] = True
        notes = []
        for i in newly:
            exc = backends[i].failed(run.run_id)
            text = f"{backends[i].spec}: {type(exc).__name__}: {exc}"
            if len(text) > _MAX_ERROR_TEXT:
                text = text[:_MAX_ERROR_TEXT - 1] + "…"
            notes.append(Tag(INCOMPLETE_PREFIX + labels[i], text, now_us()))
        for b in backends:
            if b.failed(run.run_id) is None:
                b.write(run, notes)


def _note_spool_losses(backends: Sequence["Backend"], run: RunInfo, lost_before: list[bool]) -> None:
    """Mark the run, in the backends still healthy, for each backend whose spool lost records."""
    newly = [i for i, b in enumerate(backends) if not lost_before[i] and b.spool_lost(run.run_id) is not None]
    if not newly:
        return
    labels = incomplete_labels(backends)
    notes = []
    for i in newly:
        text = (f"{backends[i].spec}: the local spool lost records ({backends[i].spool_lost(run.run_id)}); "
                "runbridge sync cannot restore them")
        if len(text) > _MAX_ERROR_TEXT:
            text = text[:_MAX_ERROR_TEXT - 1] + "…"
        notes.append(Tag(SPOOL_LOST_PREFIX + labels[i], text, now_us()))
    for b in backends:
        if b.failed(run.run_id) is None:
            b.write(run, notes)

"""Writing one run to several backends at once, each failure isolated.

`FanOut` makes every write call (start_run, write, end_run) on every backend of a workspace. A
backend that raises is disabled for that run with exactly one `BackendFailedWarning`; the script
and the other backends carry on. From the failing call on, whatever the disabled backend misses
is kept in the local spool (`runbridge.spool`), and the run is marked in the healthy backends
with the reserved tag ``runbridge.incomplete.<label>`` = "<spec>: <error>", so `runbridge show`
reports it and `runbridge sync` repairs it. A spool that cannot keep a call (a full disk) says so
once per run (`SpoolFailedWarning`) and marks the run ``runbridge.spool_lost.<label>``: what
only the spool would have held is lost, and sync cannot clear that mark.
"""

from __future__ import annotations

import threading
import warnings
from typing import Callable, Sequence

from . import spool
from .backends import Backend
from .errors import BackendFailedWarning, RunbridgeError, SpoolFailedWarning
from .records import RESERVED_PREFIX, Record, RunInfo, Tag, now_us

#: Reserved tag set on a run, in the healthy backends, for each backend that failed during it.
INCOMPLETE_PREFIX = RESERVED_PREFIX + "incomplete."
#: Reserved tag set on a run, in the healthy backends, when the spool lost what a backend missed.
SPOOL_LOST_PREFIX = RESERVED_PREFIX + "spool_lost."
_MAX_ERROR_TEXT = 1000


def incomplete_labels(backends: Sequence[Backend]) -> list[str]:
    """The label of each backend in incomplete tags: its name, or name + position if repeated."""
    names = [b.name for b in backends]
    return [n if names.count(n) == 1 else f"{n}{i + 1}" for i, n in enumerate(names)]


class FanOut:
    """The write side of a workspace: every call goes to every backend, failures isolated."""

    def __init__(self, backends: Sequence[Backend]):
        self.backends = list(backends)
        self._failures: dict[tuple[int, str], BaseException] = {}
        self._spool_lost: set[tuple[int, str]] = set()
        self._lock = threading.Lock()

    def failure(self, backend: Backend, run_id: str) -> BaseException | None:
        """The error that disabled `backend` for `run_id` in this process, if any."""
        return self._failures.get((id(backend), run_id))

    def require_one_started(self, run: RunInfo) -> None:
        """Raise if no backend took the run (nowhere to log it): the run does not start, and
        nothing is left in the spool for `runbridge sync` to replay."""
        errors = [self.failure(b, run.run_id) for b in self.backends]
        if any(e is None for e in errors):
            return
        for backend in self.backends:
            for path in spool.files_for(str(backend.spec), run.run_id):
                path.unlink(missing_ok=True)
        reasons = "; ".join(f"{b.spec}: {e}" for b, e in zip(self.backends, errors))
        raise RunbridgeError(f"run {run.run_id} could not start: no backend accepted it ({reasons})")

    def start_run(self, run: RunInfo) -> None:
        """Start the run on every backend. The failures are announced only if one backend took it:
        otherwise `require_one_started` refuses the run with one error naming them all."""
        newly = self._each(run, "start_run", {}, lambda b: b.start_run(run), announce=False)
        if len(newly) < len(self.backends):
            for i in newly:
                self._announce(i, "start_run", run)

    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        self._each(run, "write", {"records": records}, lambda b: b.write(run, records))

    def end_run(self, run: RunInfo, status: str) -> None:
        self._each(run, "end_run", {"status": status}, lambda b: b.end_run(run, status))

    def _each(self, run: RunInfo, op: str, payload: dict, call: Callable[[Backend], None],
              keep: bool = True, announce: bool = True) -> list[int]:
        """`call` on every backend not disabled for the run; what a disabled one misses is spooled
        (unless `keep` is False: the incomplete marks, which concern the others). Returns the
        backends this call disabled, each announced with a warning unless `announce` is False."""
        newly: list[int] = []
        for i, backend in enumerate(self.backends):
            if self.failure(backend, run.run_id) is not None:
                if keep:
                    self._keep(i, op, run, payload)  # kept for `runbridge sync`
                continue
            try:
                call(backend)
            except Exception as exc:  # noqa: BLE001 - a backend failure must not stop training
                if keep:
                    self._keep(i, op, run, payload)
                with self._lock:
                    first = (id(backend), run.run_id) not in self._failures
                    self._failures[(id(backend), run.run_id)] = exc
                if first:
                    newly.append(i)
                    if announce:
                        self._announce(i, op, run)
        if newly:
            self._mark_incomplete(run, newly)
        return newly

    def _announce(self, index: int, op: str, run: RunInfo) -> None:
        """The one `BackendFailedWarning` of backend `index` for this run."""
        backend = self.backends[index]
        others = "the other backends carry on" if len(self.backends) > 1 else \
            "it was the only backend: what it missed is kept in the local spool"
        warnings.warn(BackendFailedWarning(
            f"backend {backend.spec} failed in {op} for run {run.run_id} and is disabled "
            f"for that run ({others}): {self.failure(backend, run.run_id)}"), stacklevel=4)

    def _keep(self, index: int, op: str, run: RunInfo, payload: dict) -> None:
        """Spool a call backend `index` missed; a spool that cannot keep it says so, once per run."""
        backend = self.backends[index]
        try:
            spool.keep(str(backend.spec), op, run, payload)
        except spool.SpoolError as exc:
            with self._lock:
                first = (id(backend), run.run_id) not in self._spool_lost
                self._spool_lost.add((id(backend), run.run_id))
            if first:
                warnings.warn(SpoolFailedWarning(
                    f"backend {backend.spec} missed records of run {run.run_id} and the local spool "
                    f"could not keep them, so `runbridge sync` cannot restore them: {exc}"), stacklevel=4)
                label = incomplete_labels(self.backends)[index]
                self._note(run, SPOOL_LOST_PREFIX + label, f"{backend.spec}: the local spool lost records "
                                                           f"({exc}); runbridge sync cannot restore them")

    def _mark_incomplete(self, run: RunInfo, newly: list[int]) -> None:
        """Tag the run in the healthy backends with one mark per newly failed backend."""
        labels = incomplete_labels(self.backends)
        for i in newly:
            self._note(run, INCOMPLETE_PREFIX + labels[i],
                       f"{self.backends[i].spec}: {self._failures[(id(self.backends[i]), run.run_id)]}")

    def _note(self, run: RunInfo, key: str, text: str) -> None:
        """A reserved tag about this run's backends, written to the healthy ones."""
        if len(text) > _MAX_ERROR_TEXT:
            text = text[:_MAX_ERROR_TEXT - 1] + "…"
        notes = [Tag(key, text, now_us())]
        self._each(run, "write", {"records": notes}, lambda b: b.write(run, notes), keep=False)

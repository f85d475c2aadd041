"""The backend contract: the pluggy hooks a backend implements.

A backend is a class named by an entry point in the group ``runbridge``; the core instantiates
it with the location part of a ``name:location`` spec and registers the instance in its own
``pluggy.PluginManager``. Methods are marked with ``@runbridge.hookimpl``.

pluggy passes arguments by name, and an implementation may accept fewer arguments than the spec
(so specs can grow without breaking old backends). An implementation argument with a default
value is never passed: do not give hook arguments defaults.

Required hooks: start_run, write, end_run, read. Optional: list_runs, list_experiments,
run_url, fetch_file, reconcile, store_location, and the fast reads read_info, read_metrics and
summarize_runs (without them the core derives their answers from `read` and `list_runs`). `runbridge.testing.BackendContract` checks a backend
against all of it.

Stores are created by writes only. The constructor must not create anything; the read hooks
(read, read_info, read_metrics, summarize_runs, list_runs, list_experiments, run_url, fetch_file) raise `runbridge.errors.StoreNotFoundError`
naming the location when no store exists there, and must work on a store the user cannot
write. Every path built from a run file name, including names read back from a store, goes
through `runbridge.media.safe_join`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import pluggy

from .records import Record, RunColumns, RunInfo, RunSummary

PROJECT = "runbridge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Hooks every backend must implement (checked when the backend is opened).
REQUIRED_HOOKS = ("start_run", "write", "end_run", "read")


class StoreLocation(NamedTuple):
    """Where a backend keeps a store, as `store_location` describes it."""

    #: The location in a form that names the same store from any working folder and that two
    #: spellings of one store share (local paths absolute and resolved).
    location: str
    #: Local files and folders the store owns (a script's snapshot never includes them).
    paths: tuple[str, ...] = ()


@hookspec
def start_run(run: RunInfo) -> None:
    """Create the run, or reopen it without duplicating anything.

    Called once per process that writes to the run (a submitted script's child process, a
    worker attaching to its parent's run, a resumed migration). If the run already exists, keep
    what it holds; `run` carries its current status and start time.
    """


@hookspec
def write(run: RunInfo, records: Sequence[Record]) -> None:
    """Store one batch of records, in order; atomically where the backend can.

    Records are `Metric`, `Row`, `Image`, `Tag`, `Property` and `File` values (see
    `runbridge.records`). Writes may arrive for a run that this process did not start (tagging
    a completed run fetched by id) and after the run ended (tags and properties). Values must
    read back exactly: ints stay ints, floats bit-exact (NaN, +-inf), strings, bools, None.
    `File.source`/`File.data` and `Image.data` carry the bytes to store.
    """


@hookspec
def end_run(run: RunInfo, status: str) -> None:
    """Record the final `status` (`run.status`, with `run.end_time` and `run.error` set).

    Flush everything and release the run's files, connections and threads.
    """


@hookspec(firstresult=True)
def read(experiment: str, run_id: str) -> list[Record] | None:
    """Every record of the run in write order, the current `RunInfo` first; None if not held.

    Must work from a fresh instance in a new process (no in-memory state), without writing (a
    read-only store); raises `StoreNotFoundError` if the store does not exist. `Image.data` and
    file bytes may be left None: the core fetches them with `fetch_file` when needed. Runs other
    tools wrote (plain MLflow runs, TensorBoard event folders) are read as well as the backend
    can.
    """


@hookspec(firstresult=True)
def read_info(experiment: str, run_id: str) -> RunInfo | None:
    """The run's current `RunInfo` (what `read` gives first), without reading its records; None
    if not held. Opening a run by id (`Run(experiment, run_id)`) asks only this."""


@hookspec(firstresult=True)
def read_metrics(experiment: str, run_id: str, name: str | None) -> RunColumns | None:
    """The run's metric records (only those of metric `name`, if not None) as `RunColumns`: every
    `Metric` as columns (`MetricColumns`, write order), `Row` and `Image` records as records;
    None if the run is not held. The same points, values and order as `read` gives (the contract
    suite compares them); descriptions may be left out. `get_metrics` and `get_metrics_frame` use
    it to read a long run without a Python object per point."""


@hookspec(firstresult=True)
def summarize_runs(experiment: str | None) -> list[RunSummary] | None:
    """One `RunSummary` per run of `experiment` (all if None), in `list_runs` order: its info,
    tags, properties and the ``(last, min, max)`` of each numeric metric, as `shapes.summarize`
    would compute them from `read` (the contract suite compares them). The run list
    (`get_runs_frame`, `runbridge runs`, `get_runs` with filters) uses it instead of one `read`
    per run. None: not implemented here (the core reads every run)."""


@hookspec(firstresult=True)
def list_runs(experiment: str | None) -> list[RunInfo] | None:
    """The runs held for `experiment` (all experiments if None), newest first.

    Includes child runs (their `parent_id` set) and runs other tools wrote. Raises
    `StoreNotFoundError` if the store does not exist (never "no runs", never creating it).
    """


@hookspec(firstresult=True)
def list_experiments() -> list[str] | None:
    """The names of the experiments held, in any order."""


@hookspec(firstresult=True)
def run_url(run: RunInfo) -> str | None:
    """A link or instruction a person can open to view the run (the MLflow UI page, a
    TensorBoard log folder), or None."""


@hookspec(firstresult=True)
def fetch_file(run: RunInfo, name: str, destination: str) -> bool | None:
    """Copy the run file `name` (an upload, an image, a JSON metric) to the local path
    `destination`. Return True if copied, None if this backend does not hold it."""


@hookspec(firstresult=True)
def reconcile(run: RunInfo) -> int | None:
    """Make every view the backend derives from the exact records of `run` hold all of them
    (for example a tracker's native metric history after a write that failed half way), without
    duplicating anything. Return the number of entries added. `runbridge sync` calls it."""


@hookspec(firstresult=True)
def store_location(location: str, base: str) -> StoreLocation | None:
    """Describe the store at `location` (the part after ``name:`` of a spec), relative paths taken
    from the folder `base`: its absolute form and the local paths it owns. Must not create or
    open anything. Implement it as a ``@staticmethod``: the core calls it on the backend class,
    without opening the backend. Without it, a location is used as written and owns no paths.
    """

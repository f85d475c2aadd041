"""The runs list of the viewer: the union of the runs every backend holds (one row per run id,
with the backends that hold it), filtered, sorted and paged as the query asks. Pure data for the
templates; reads only (`list_runs`, `list_experiments`, `read`)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

from .. import charts, shapes
from ..errors import RunbridgeError
from ..liveness import presumed_dead
from ..records import STATUSES, Record, RunInfo, now_us
from ..run import Workspace
from ..timefmt import duration, short_utc

#: Runs per page unless `per` says otherwise, and the most `per` may ask.
PER_PAGE, MAX_PER_PAGE = 50, 500
#: Columns `sort` takes besides ``metric:<name>``.
SORTS = ("start", "id", "name", "status", "duration", "experiment")


class Held(NamedTuple):
    """A run id and the specs of the backends whose `list_runs` hold it (the first answers)."""

    info: RunInfo
    holders: tuple[str, ...]


class Union(NamedTuple):
    runs: list[Held]
    #: (spec, error) of each backend that could not be listed (a server that is down).
    errors: list[tuple[str, str]]


def _each(ws: Workspace, call: Callable[[Any], Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    answers, errors = [], []
    for backend in ws.backends:
        try:
            answers.append((str(backend.spec), call(backend)))
        except RunbridgeError as exc:
            errors.append((str(backend.spec), " ".join(str(exc).split())[:300]))
    return answers, errors


def union_runs(ws: Workspace, experiment: str | None) -> Union:
    """Every run any backend holds (of `experiment`, or all), newest first, one per run id."""
    answers, errors = _each(ws, lambda backend: backend.list_runs(experiment))
    seen: dict[str, tuple[RunInfo, list[str]]] = {}
    for spec, infos in answers:
        for info in infos:
            seen.setdefault(info.run_id, (info, []))[1].append(spec)
    runs = [Held(info, tuple(holders)) for info, holders in seen.values()]
    runs.sort(key=lambda h: (-(h.info.start_time or 0), h.info.run_id))
    return Union(runs, errors)


def experiments(ws: Workspace) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The experiment list: name, how many runs, which backends hold it."""
    answers, errors = _each(ws, lambda backend: backend.list_experiments())
    names: dict[str, list[str]] = {}
    for spec, listed in answers:
        for name in listed:
            names.setdefault(name, []).append(spec)
    counts: dict[str, int] = {}
    for held in union_runs(ws, None).runs:
        counts[held.info.experiment] = counts.get(held.info.experiment, 0) + 1
    return [{"name": n, "holders": h, "runs": counts.get(n, 0)} for n, h in sorted(names.items())], errors


def _int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = args.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"query argument {name!r} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"query argument {name!r} must be between {low} and {high}, got {value}")
    return value


class Query(NamedTuple):
    """What a runs page asks for (its query arguments, checked)."""

    experiment: str | None
    status: str | None
    tag: str | None
    text: str | None
    sort: str
    descending: bool
    page: int
    per: int
    stats: bool

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> "Query":
        """Read and check the query arguments; ValueError names a bad one."""
        status = args.get("status") or None
        if status is not None and status not in (*STATUSES, "Killed?"):
            raise ValueError(f"query argument 'status' must be one of {', '.join(STATUSES)}, got {status!r}")
        sort = args.get("sort") or "start"
        if sort not in SORTS and not (sort.startswith("metric:") and len(sort) > 7):
            raise ValueError(f"query argument 'sort' must be one of {', '.join(SORTS)} or metric:<name>, "
                             f"got {sort!r}")
        return cls(args.get("experiment") or None, status, args.get("tag") or None, args.get("q") or None,
                   sort, args.get("desc", "1" if sort == "start" else "0") == "1",
                   _int(args, "page", 1, 1, 10**9), _int(args, "per", PER_PAGE, 1, MAX_PER_PAGE),
                   args.get("stats") == "1")


def read_records(ws: Workspace, info: RunInfo) -> list[Record]:
    """A run's records from the first backend holding it; just its `RunInfo` if none answers."""
    try:
        return ws.read_run(info.experiment, info.run_id)[1]
    except RunbridgeError:
        return [info]


def _elapsed(info: RunInfo) -> int:
    """Microseconds the run took, or has taken so far while it has no end time (for sorting)."""
    return ((info.end_time or now_us()) - info.start_time) if info.start_time else 0


def run_row(held: Held, records: Sequence[Record], run_charts: Sequence[charts.Chart] | None = None) -> dict[str, Any]:
    """One row of the runs list: the run's columns and (last, min, max) per numeric metric
    (from `run_charts`, the run's `charts.charts`, when the caller has them already)."""
    info = shapes.run_info(records) or held.info
    metrics = {}
    for chart in charts.charts(records) if run_charts is None else run_charts:
        numbers = charts.last_numbers(chart)
        if numbers is not None:
            metrics[chart.name] = numbers
    return {"id": info.run_id, "experiment": info.experiment, "name": info.display_name or "",
            "status": "Killed?" if presumed_dead(info, records) else info.status,
            "start": short_utc(info.start_time), "duration": duration(info), "parent": info.parent_id,
            "tags": shapes.fold_tags(records), "metrics": metrics, "holders": held.holders,
            "seconds": _elapsed(info)}


def _matches_tag(tags: Mapping[str, Any], wanted: str) -> bool:
    key, equals, value = wanted.partition("=")
    return key in tags and (not equals or str(tags[key]) == value)


def _sort_key(query: Query, row: dict[str, Any]) -> tuple:
    if query.sort.startswith("metric:"):
        numbers = row["metrics"].get(query.sort[7:])
        return (numbers is None, numbers[0] if numbers else 0)
    column = {"start": "start", "id": "id", "name": "name", "status": "status", "duration": "seconds",
              "experiment": "experiment"}[query.sort]
    return (False, row[column])


def runs_page(ws: Workspace, query: Query) -> dict[str, Any]:
    """The runs page: the rows of this page, the metric columns, paging and the backends' errors.

    Only the rows shown are read, unless a tag filter or a metric sort needs every run's records;
    filters on status and text (id, name, experiment) use the run list alone."""
    union = union_runs(ws, query.experiment)
    held = union.runs
    if query.text:
        needle = query.text.lower()
        held = [h for h in held if needle in h.info.run_id.lower() or needle in (h.info.display_name or "").lower()
                or needle in h.info.experiment.lower()]
    if query.status and query.status != "Killed?":
        held = [h for h in held if h.info.status == query.status]
    reads_all = bool(query.tag) or query.sort.startswith("metric:") or query.status == "Killed?"
    if reads_all:
        rows = [run_row(h, read_records(ws, h.info)) for h in held]
        if query.tag:
            rows = [r for r in rows if _matches_tag(r["tags"], query.tag)]
        if query.status == "Killed?":
            rows = [r for r in rows if r["status"] == "Killed?"]
        total = len(rows)
    else:
        total = len(held)
        rows = None
    if query.sort != "start" or not query.descending:
        if rows is None:
            key = {"id": lambda h: h.info.run_id, "name": lambda h: h.info.display_name or "",
                   "status": lambda h: h.info.status, "experiment": lambda h: h.info.experiment,
                   "duration": lambda h: _elapsed(h.info),
                   "start": lambda h: h.info.start_time}[query.sort]
            held = sorted(held, key=key, reverse=query.descending)
        else:
            rows.sort(key=lambda r: _sort_key(query, r), reverse=query.descending)
    pages = max(1, -(-total // query.per))
    page = min(query.page, pages)
    start = (page - 1) * query.per
    if rows is None:
        rows = [run_row(h, read_records(ws, h.info)) for h in held[start:start + query.per]]
    else:
        rows = rows[start:start + query.per]
    columns = sorted({m for r in rows for m in r["metrics"]})
    return {"rows": rows, "columns": columns, "total": total, "page": page, "pages": pages, "query": query,
            "errors": union.errors, "statuses": STATUSES, "several": len(ws.backends) > 1}

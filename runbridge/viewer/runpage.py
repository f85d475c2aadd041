"""The run page and the compare page as data for the templates: a run's details, files, output
log and every metric drawn by the studio's rules (`runbridge.charts`), charts as SVG geometry
(`svg`). Where a file link or an image points is the caller's (`Links`): the web app serves them,
the report embeds them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from .. import charts, shapes
from ..errors import RunbridgeError, RunNotFoundError
from ..liveness import presumed_dead
from ..media import safe_name
from ..records import RUNNING, File, Metric, Property, RunInfo
from ..reduce import stats
from ..run import Workspace
from ..scripts.names import LOG_PATH_PROPERTY, STD_LOG
from ..timefmt import duration, short_utc
from . import svg
from .pages import read_records, run_row, union_runs

#: The end of a script run's output shown on its page.
LOG_TAIL = 200_000
#: Images of one name shown on a page (the last ones).
MAX_IMAGES = 8


class Links(NamedTuple):
    """Where a page points: `file(run_id, name, media_type, data)` for a run file (a URL or a
    data: URI; None: no link), `run(run_id)` for another run's page."""

    file: Callable[[str, str, str, "bytes | None"], "str | None"]
    run: Callable[[str], str]
    #: Whether the page needs a file's bytes for its link (the report embeds them).
    embeds: bool = False


def load_file(ws: Workspace, info: RunInfo, name: str) -> bytes | None:
    """A run file's bytes, fetched into a temporary folder (never into a store), else None."""
    name = safe_name(name, "name")
    with tempfile.TemporaryDirectory(prefix="runbridge-view-") as tmp:
        target = Path(tmp) / "file"
        try:
            if not ws.fetch_file(info, name, str(target)) or not target.is_file():
                return None
        except RunbridgeError:
            return None
        return target.read_bytes()


def drawn(chart: charts.Chart, load: Callable[[str], "bytes | None"], links: Links, run_id: str) -> dict[str, Any]:
    """What the template needs to show one metric."""
    out: dict[str, Any] = {"chart": chart, "name": chart.name, "kind": chart.kind, "count": chart.count}
    if chart.kind in charts.LINES:
        out["plot"] = svg.line_plot([(chart.name, chart)])
        out["last"], out["min"], out["max"] = stats(chart.y) or ("", "", "")
    elif chart.kind == charts.TABLE:
        columns = chart.columns or {}
        out["header"] = list(columns)
        out["rows"] = [[columns[c][i] for c in columns] for i in range(min(chart.count, 1000))]
    elif chart.kind == charts.IMAGE:
        names = chart.files[-MAX_IMAGES:]
        out["images"] = [(n, links.file(run_id, n, chart.media_type, load(n) if links.embeds else None))
                         for n in names]
    elif chart.kind == charts.JSON:
        data = load(chart.files[-1])
        view = charts.json_view(data) if data is not None else charts.JsonView("text", text="(file not found)")
        out["view"] = view
        if view.kind == "heatmap":
            out["heatmap"] = svg.heatmap(view.labels, view.matrix)
    return out


def live_log(records: Sequence[Any]) -> Path | None:
    """The local file a Running script run's output is teed into (the submitter made it), only
    where the submitter makes it: ``std_log.txt`` in a ``runbridge-*`` folder of this machine's
    temporary folder, a regular file (the path comes from a store: anything else is ignored)."""
    paths = [r.value for r in records if type(r) is Property and r.key == LOG_PATH_PROPERTY]
    if not paths or not isinstance(paths[-1], str):
        return None
    path = Path(paths[-1])
    folder = Path(tempfile.gettempdir()).resolve()
    if (path.name != "std_log.txt" or not path.parent.name.startswith("runbridge-") or path.is_symlink()
            or path.parent.is_symlink() or path.resolve().parent.parent != folder or not path.is_file()):
        return None
    return path


def _tail(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - LOG_TAIL - 1))
        return f.read()


def _std_log(ws: Workspace, info: RunInfo, names: Sequence[str], meta: Sequence[Any]) -> str | None:
    live = live_log(meta) if info.status == RUNNING and STD_LOG not in names else None
    if live is not None:
        data = _tail(live)
    elif STD_LOG in names:
        data = load_file(ws, info, STD_LOG)
    else:
        return None
    if data is None:
        return None
    text = data[-LOG_TAIL:].decode("utf-8", "replace")
    return text if len(data) <= LOG_TAIL else "[... earlier output not shown ...]\n" + text


def run_page(ws: Workspace, run_id: str, links: Links) -> dict[str, Any]:
    """Everything the run page shows. `RunNotFoundError` if no backend holds `run_id`."""
    info = ws.find_run(run_id)
    info, records = ws.read_run(info.experiment, run_id)
    union = union_runs(ws, info.experiment)
    holders = next((h.holders for h in union.runs if h.info.run_id == run_id), ())
    children = [h.info for h in union.runs if h.info.parent_id == run_id]
    meta = [r for r in records if type(r) is not Metric]  # all but the points: what the folds below read
    names = shapes.file_names(meta)
    sizes = {r.name: r.size for r in meta if type(r) is File}
    cache: dict[str, bytes | None] = {}

    def load(name: str) -> bytes | None:
        if name not in cache:
            cache[name] = load_file(ws, info, name)
        return cache[name]

    dead = presumed_dead(info, records)
    return {
        "info": info, "status": "Killed?" if dead else info.status, "dead": dead,
        "start": short_utc(info.start_time), "end": short_utc(info.end_time), "duration": duration(info),
        "running": info.status == RUNNING and not dead, "holders": holders,
        "children": [(c.run_id, c.display_name or "", c.status, links.run(c.run_id)) for c in children],
        "parent": (info.parent_id, links.run(info.parent_id)) if info.parent_id else None,
        "tags": shapes.fold_tags(meta), "properties": shapes.fold_properties(meta),
        "files": [(n, sizes.get(n), links.file(run_id, n, "application/octet-stream", None)) for n in names],
        "std_log": _std_log(ws, info, names, meta),
        "metrics": [drawn(c, load, links, run_id) for c in charts.charts(records)],
    }


def compare_page(ws: Workspace, run_ids: Sequence[str], links: Links) -> dict[str, Any]:
    """One chart per metric with a line per run, and the runs' values side by side."""
    if not run_ids:
        raise ValueError("query argument 'id' must name at least one run to compare (id=...&id=...)")
    index = {h.info.run_id: h for h in union_runs(ws, None).runs}
    runs, per_run = [], []
    for run_id in dict.fromkeys(run_ids):
        if run_id not in index:
            raise RunNotFoundError(f"no run {run_id!r} in {', '.join(ws.specs)} (query argument 'id')")
        held = index[run_id]
        records = read_records(ws, held.info)
        label = f"{held.info.display_name} ({run_id})" if held.info.display_name else run_id
        run_charts = charts.charts(records)
        runs.append({**run_row(held, records, run_charts), "label": label, "href": links.run(run_id)})
        per_run.append((label, run_charts))
    metrics = []
    for name, series in charts.by_name(per_run).items():
        lines = [(label, c) for label, c in series if c.kind in charts.LINES]
        metrics.append({"name": name, "plot": svg.line_plot(lines) if lines else None})
    columns = sorted({m for r in runs for m in r["metrics"]})
    return {"runs": runs, "metrics": metrics, "columns": columns}

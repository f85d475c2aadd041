"""The inspection commands of the `runbridge` command line: backends, runs, show, metrics
(assembled in `cli`; migrate and sync are in `commands_migrate`).

Every command takes ``--backend SPEC`` (repeatable or comma-separated; else the configuration:
RUNBRIDGE_BACKENDS, runbridge.toml / [tool.runbridge], the default store). A run is named by its
id alone; its experiment is found with ``list_runs``. Errors print one line (``Error: ...``) and
exit with status 1; set RUNBRIDGE_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Sequence

import click

from . import shapes
from .backends import describe_installed
from .cliutil import backend_option, fmt, one_line_errors, open_workspace, specs_of, table
from .config import resolve_backends
from .fanout import INCOMPLETE_PREFIX, incomplete_labels
from .liveness import HEARTBEAT_TAG, presumed_dead
from .records import File, Image, Metric, Record, Row, RunInfo, Tag
from .run import Experiment, Run
from .spool import files_for
from .timefmt import duration, short_utc

# ---------------------------------------------------------------------------------------------
# runbridge backends


@click.command("backends")
@backend_option
@one_line_errors
def backends_command(backend: tuple[str, ...]) -> None:
    """List the installed backends, the extra each needs, and whether it can be used here.

    \b
    Example:
      runbridge backends
    """
    rows = []
    fixes = []
    for row in describe_installed():
        usable = "yes" if row["importable"] else "no"
        rows.append([row["name"], row["extra"] or "-", usable, row["distribution"], row["target"]])
        if not row["importable"]:
            extra = f"[{row['extra']}]" if row["extra"] else ""
            fixes.append(f"  {row['name']}: {row['error']} -> pip install '{row['distribution']}{extra}'")
    click.echo(table(["NAME", "EXTRA", "IMPORTABLE", "PROVIDED BY", "ENTRY POINT"], rows))
    if fixes:
        click.echo("\nNot importable:")
        click.echo("\n".join(fixes))
    click.echo("\nConfigured: " + ", ".join(resolve_backends(specs_of(backend))))


# ---------------------------------------------------------------------------------------------
# runbridge runs


@click.command("runs")
@click.argument("experiment_arg", metavar="[EXPERIMENT]", required=False)
@click.option("--experiment", "-e", help="Only the runs of this experiment.")
@click.option("--limit", "-n", default=50, show_default=True, help="Show at most this many runs (newest first).")
@click.option("--metrics", "-m", "metric_count", default=3, show_default=True,
              help="How many metrics to show the last value of.")
@backend_option
@one_line_errors
def runs_command(experiment_arg: str | None, experiment: str | None, limit: int, metric_count: int,
                 backend: tuple[str, ...]) -> None:
    """List runs, newest first: id, experiment, name, status, start, duration, last metric values.

    \b
    Examples:
      runbridge runs
      runbridge runs --experiment mnist --backend mlflow:http://127.0.0.1:5000
    """
    ws = open_workspace(backend)
    name = experiment or experiment_arg
    if name is not None and name not in ws.backends[0].list_experiments():
        raise click.ClickException(f"no experiment {name!r} in {ws.specs[0]} "
                                   f"(experiments: {', '.join(sorted(ws.backends[0].list_experiments())) or 'none'})")
    summaries = ws.summaries(name, missing_ok=False, limit=max(limit, 0))
    if not summaries:
        click.echo(f"No runs in {ws.specs[0]}" + (f" for experiment {name!r}" if name else "") + ".")
        return
    counts: dict[str, int] = {}
    for summary in summaries:
        for key in summary.metrics:
            counts[key] = counts.get(key, 0) + 1
    shown = sorted(counts, key=lambda k: (-counts[k], k))[:max(metric_count, 0)]
    rows = []
    for summary in summaries:
        info, trios = summary.info, summary.metrics
        beat = [Tag(HEARTBEAT_TAG, summary.tags[HEARTBEAT_TAG], 0)] if HEARTBEAT_TAG in summary.tags else []
        status = "Killed?" if presumed_dead(info, beat) else info.status
        rows.append([info.run_id, info.experiment, info.display_name or "-", status, short_utc(info.start_time),
                     duration(info)] + [fmt(trios[m][0]) if m in trios else "" for m in shown])
    click.echo(table(["ID", "EXPERIMENT", "NAME", "STATUS", "START (UTC)", "DURATION"] + shown, rows))


# ---------------------------------------------------------------------------------------------
# runbridge show


def metric_summary(records: Sequence[Record]) -> list[list[str]]:
    """NAME, KIND, COUNT, LAST, MIN, MAX per metric name, in first-logged order."""
    series: dict[str, list[Record]] = {}
    for rec in records:
        if type(rec) in (Metric, Row, Image):
            series.setdefault(rec.name, []).append(rec)
    rows = []
    for name, recs in series.items():
        kind = type(recs[0])
        if kind is Metric:
            label = "list" if all(r.from_list for r in recs) else "scalar"
            values = [r.value for r in recs]
            numbers = [v for v in values if type(v) in (int, float) and not (isinstance(v, float) and math.isnan(v))]
            rows.append([name, label, len(recs), fmt(values[-1]),
                         fmt(min(numbers)) if numbers else "", fmt(max(numbers)) if numbers else ""])
        elif kind is Row:
            columns = ", ".join(c for c, _ in recs[-1].cells)
            rows.append([name, "table", len(recs), f"columns: {columns}", "", ""])
        else:
            label = "json" if recs[0].media_type == "application/json" else "image"
            rows.append([name, label, len(recs), recs[-1].file_name, "", ""])
    return rows


def backend_states(ws, info: RunInfo) -> list[tuple[str, str]]:
    """(spec, state) of the run in each backend: complete, incomplete (why), missing, unreachable."""
    labels = incomplete_labels(ws.backends)
    marks: dict[str, str] = {}
    held: dict[int, bool] = {}
    errors: dict[int, str] = {}
    for i, backend in enumerate(ws.backends):
        try:
            found = backend.read(info.experiment, info.run_id)
        except Exception as exc:  # noqa: BLE001 - a down backend is a state to report
            errors[i] = " ".join(str(exc).split())[:200]
            continue
        held[i] = found is not None
        if found is not None:
            for key, value in shapes.fold_tags(found.records, include_reserved=True).items():
                if key.startswith(INCOMPLETE_PREFIX):
                    marks[key[len(INCOMPLETE_PREFIX):]] = value or ""
    out = []
    for i, backend in enumerate(ws.backends):
        if files_for(str(backend.spec), info.run_id):
            out.append((str(backend.spec), "INCOMPLETE: what it missed is kept in the local spool "
                                           "(replay it with: runbridge sync)"))
        elif labels[i] in marks:
            out.append((str(backend.spec), f"INCOMPLETE: {marks[labels[i]]} (repair with: runbridge sync)"))
        elif i in errors:
            out.append((str(backend.spec), f"unreachable: {errors[i]}"))
        elif not held.get(i):
            out.append((str(backend.spec), "does not hold this run"))
        else:
            out.append((str(backend.spec), "complete"))
    return out


@click.command("show")
@click.argument("run_id", metavar="RUN")
@backend_option
@one_line_errors
def show_command(run_id: str, backend: tuple[str, ...]) -> None:
    """Show one run: details, tags, properties, files, a summary of its metrics, and whether every
    backend holds all of it.

    \b
    Example:
      runbridge show mnist_1732262400_1a2b3c4d
    """
    ws = open_workspace(backend)
    info, records = ws.read_run(ws.find_run(run_id).experiment, run_id)
    children, url = ws.first_answer(lambda one: (
        [r.run_id for r in one.list_runs(info.experiment) if r.parent_id == run_id], one.run_url(info))) or ([], None)
    lines = [
        ("Run", info.run_id), ("Experiment", info.experiment), ("Name", info.display_name or "-"),
        ("Status", f"Killed? ({dead})" if (dead := presumed_dead(info, records)) else info.status),
        ("Parent", info.parent_id or "-"), ("Started", short_utc(info.start_time) + " UTC"),
        ("Ended", short_utc(info.end_time) + (" UTC" if info.end_time else "")), ("Duration", duration(info)),
    ]
    if info.error:
        lines.append(("Error", " ".join(info.error.split())))
    if url:
        lines.append(("Viewer", url))
    if children:
        lines.append(("Children", ", ".join(children)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key.ljust(width)}  {value}")
    click.echo("\nBackends")
    for spec, state in backend_states(ws, info):
        click.echo(f"  {spec}: {state}")
    for title, values in (("Tags", shapes.fold_tags(records)), ("Properties", shapes.fold_properties(records))):
        click.echo(f"\n{title}" + ("" if values else ": none"))
        for key, value in values.items():
            click.echo(f"  {key} = {value}" if value is not None else f"  {key}")
    names = shapes.file_names(records)
    sizes = {r.name: r.size for r in records if type(r) is File}
    click.echo("\nFiles" + ("" if names else ": none"))
    for name in names:
        click.echo(f"  {name}" + (f"  ({sizes[name]} bytes)" if name in sizes else ""))
    summary = metric_summary(records)
    click.echo("\nMetrics" + ("" if summary else ": none"))
    if summary:
        click.echo("\n".join("  " + line for line in
                             table(["NAME", "KIND", "COUNT", "LAST", "MIN", "MAX"], summary).splitlines()))


# ---------------------------------------------------------------------------------------------
# runbridge metrics


def write_csv(records: Sequence[Record], name: str | None, out: Any) -> int:
    """The rows and columns of `run.get_metrics_frame()` (name, seq, writer, step, timestamp, kind, value,
    then one per table column), written with the csv module from the values themselves, so ints
    stay ints (no float NaN-filling) and floats keep every digit. Returns the number of rows."""
    import csv

    from .frames import METRIC_COLUMNS, metric_rows  # pandas, loaded only for this command

    rows = metric_rows(records, name)
    columns = METRIC_COLUMNS + sorted({c for r in rows for c in r} - set(METRIC_COLUMNS))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        row["timestamp"] = row["timestamp"].isoformat()
        writer.writerow(["" if row.get(c) is None else repr(row[c]) if type(row.get(c)) is float else row[c]
                         for c in columns])
    return len(rows)


@click.command("metrics")
@click.argument("run_id", metavar="RUN")
@click.option("--name", help="Only this metric.")
@click.option("--format", "fmt_", type=click.Choice(["json", "csv"]), default="json", show_default=True,
              help="json: the get_metrics() shapes; csv: the lossless long form, one row per value.")
@click.option("--csv", "as_csv", is_flag=True, help="Same as --format csv.")
@click.option("--recursive", "-r", is_flag=True, help="JSON: include child runs ({run id: metrics}).")
@backend_option
@one_line_errors
def metrics_command(run_id: str, name: str | None, fmt_: str, as_csv: bool, recursive: bool,
                    backend: tuple[str, ...]) -> None:
    """Print a run's metrics: as JSON in the azureml get_metrics() shapes, or as CSV with one row
    per logged value (name, seq, writer, step, timestamp, kind, value, table columns).

    NaN and infinities are written as NaN / Infinity / -Infinity (what Python's json reads).

    \b
    Examples:
      runbridge metrics mnist_1732262400_1a2b3c4d
      runbridge metrics mnist_1732262400_1a2b3c4d --name loss --format csv > loss.csv
    """
    ws = open_workspace(backend)
    info = ws.find_run(run_id)
    if as_csv or fmt_ == "csv":
        if not write_csv(ws.read_run(info.experiment, run_id)[1], name, sys.stdout):
            raise click.ClickException(f"run {run_id} has no metric {name!r}")
        return
    metrics = Run(Experiment(ws, info.experiment), run_id).get_metrics(name=name, recursive=recursive)
    if name is not None and not metrics:
        raise click.ClickException(f"run {run_id} has no metric {name!r}")
    click.echo(json.dumps(metrics, indent=2, ensure_ascii=False))

"""The inspection and migration commands of the `runbridge` command line (assembled in `cli`).

Every command takes ``--backend SPEC`` (repeatable or comma-separated; else the configuration:
RUNBRIDGE_BACKENDS, runbridge.toml / [tool.runbridge], the default store). A run is named by its
id alone; its experiment is found with ``list_runs``. Errors print one line (``Error: ...``) and
exit with status 1; set RUNBRIDGE_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

import click

from . import shapes
from .backends import describe_installed
from .fanout import INCOMPLETE_PREFIX
from .liveness import presumed_dead
from .config import split_specs
from .records import File, Image, Metric, Record, Row, RunInfo
from .timefmt import duration, short_utc

# ---------------------------------------------------------------------------------------------
# shared plumbing


def one_line_errors(command: Callable) -> Callable:
    """Turn any error into click's one-line ``Error: ...`` and exit status 1 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # `runbridge metrics ... | head`: the reader has enough
            sys.stderr.close()
            raise SystemExit(0) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's contract is one line per error
            if os.environ.get("RUNBRIDGE_DEBUG"):
                raise
            from .errors import RunbridgeError

            text = str(exc) if isinstance(exc, (RunbridgeError, LookupError, ValueError)) and str(exc) \
                else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KeyError) and exc.args:
                text = str(exc.args[0])
            raise click.ClickException(" ".join(text.split())) from None

    return wrapper


def backend_option(command: Callable) -> Callable:
    return click.option(
        "--backend", "-b", "backend", multiple=True, metavar="SPEC",
        help="Backend spec(s) to use, e.g. sqlite:.runbridge/runs.db or mlflow:http://127.0.0.1:5000 "
             "(repeat or comma-separate; default: RUNBRIDGE_BACKENDS, runbridge.toml, the default store).",
    )(command)


def specs_of(backend: Sequence[str]) -> list[str] | None:
    specs = [s for item in backend for s in split_specs(item)]
    return specs or None


def open_workspace(backend: Sequence[str]):
    from .experiment import Workspace

    return Workspace(backends=specs_of(backend))



def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "None"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def last_numbers(records: Sequence[Record]) -> dict[str, Any]:
    """The last value of each numeric scalar metric."""
    out: dict[str, Any] = {}
    for rec in records:
        if type(rec) is Metric and type(rec.value) in (int, float):
            out[rec.name] = rec.value
    return out


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
    from .config import resolve_backends

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
    infos = ws.list_runs(name)[:max(limit, 0)]
    if not infos:
        click.echo(f"No runs in {ws.specs[0]}" + (f" for experiment {name!r}" if name else "") + ".")
        return
    lasts, statuses = [], []
    for info in infos:
        records = ws.backends[0].read(info.experiment, info.run_id) or [info]
        lasts.append(last_numbers(records))
        statuses.append("Killed?" if presumed_dead(info, records) else info.status)
    counts: dict[str, int] = {}
    for last in lasts:
        for key in last:
            counts[key] = counts.get(key, 0) + 1
    shown = sorted(counts, key=lambda k: (-counts[k], k))[:max(metric_count, 0)]
    rows = []
    for info, last, status in zip(infos, lasts, statuses):
        rows.append([info.run_id, info.experiment, info.display_name or "-", status, short_utc(info.start_time),
                     duration(info)] + [fmt(last[m]) if m in last else "" for m in shown])
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
    from .fanout import incomplete_labels

    labels = incomplete_labels(ws.backends)
    marks: dict[str, str] = {}
    held: dict[int, bool] = {}
    errors: dict[int, str] = {}
    for i, backend in enumerate(ws.backends):
        try:
            records = backend.read(info.experiment, info.run_id)
        except Exception as exc:  # noqa: BLE001 - a down backend is a state to report
            errors[i] = " ".join(str(exc).split())[:200]
            continue
        held[i] = records is not None
        if records is not None:
            for key, value in shapes.fold_tags(records, include_reserved=True).items():
                if key.startswith(INCOMPLETE_PREFIX):
                    marks[key[len(INCOMPLETE_PREFIX):]] = value or ""
    from .spool import files_for

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

    from .frames import METRIC_COLUMNS, metric_rows

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
    from .experiment import Experiment
    from .run import Run

    ws = open_workspace(backend)
    info = ws.find_run(run_id)
    run = Run(Experiment(ws, info.experiment), run_id)
    if as_csv or fmt_ == "csv":
        if not write_csv(run._read_records(), name, sys.stdout):
            raise click.ClickException(f"run {run_id} has no metric {name!r}")
        return
    metrics = run.get_metrics(name=name, recursive=recursive)
    if name is not None and not metrics:
        raise click.ClickException(f"run {run_id} has no metric {name!r}")
    click.echo(json.dumps(metrics, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# runbridge migrate / sync


@click.command("migrate")
@click.argument("specs", nargs=-1, metavar="[SRC] DST", required=True)
@click.option("--experiment", "-e", "experiments", multiple=True, help="Only this experiment (repeatable).")
@click.option("--run", "-r", "run_ids", multiple=True, help="Only this run and its children (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
              help="Only runs started at or after this date (UTC), e.g. 2024-05-01.")
@click.option("--dry-run", is_flag=True, help="List what would be copied; write nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@backend_option
@one_line_errors
def migrate_command(specs: tuple[str, ...], experiments: tuple[str, ...], run_ids: tuple[str, ...],
                    since: datetime | None, dry_run: bool, no_progress: bool, backend: tuple[str, ...]) -> None:
    """Copy runs from backend SRC to backend DST: every metric with its steps and times, tags,
    properties, files, status, times and parent/child links. Runs already copied are skipped and
    an interrupted migration resumes, so it is safe to run again. With only DST, the source is
    --backend (or the configured first backend). Ends with a summary, including every value DST
    could not hold exactly; exits 1 if any run failed.

    \b
    Examples:
      runbridge migrate sqlite:.runbridge/runs.db mlflow:http://127.0.0.1:5000
      runbridge migrate tensorboard:runs/ mlflow:sqlite:///mlflow.db --experiment exp1 --dry-run
    """
    from .config import resolve_backends
    from .migrate import migrate

    if len(specs) == 1:
        src, dst = resolve_backends(specs_of(backend))[0], specs[0]
    elif len(specs) == 2:
        src, dst = specs
    else:
        raise click.UsageError("give SRC and DST backend specs (or only DST, with --backend SRC)")
    report = migrate(src, dst, experiments=list(experiments) or None, run_ids=list(run_ids) or None,
                     since=since, dry_run=dry_run, progress=not no_progress)
    click.echo(report.summary())
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} run(s) could not be copied (see above)")


@click.command("sync")
@click.option("--run", "-r", "run_ids", multiple=True, help="Only this run (repeatable).")
@click.option("--dry-run", is_flag=True, help="List what would be repaired; write nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@backend_option
@one_line_errors
def sync_command(run_ids: tuple[str, ...], dry_run: bool, no_progress: bool, backend: tuple[str, ...]) -> None:
    """Repair the backends a run could not write to: when a backend failed during a run (a server
    down, a full disk), the others recorded it; once it is back, sync copies to it what it
    missed, from a backend that holds everything, and clears the mark.

    \b
    Example:
      RUNBRIDGE_BACKENDS=sqlite:runs.db,mlflow:http://127.0.0.1:5000 runbridge sync
    """
    from .sync import sync

    report = sync(specs_of(backend), run_ids=list(run_ids) or None, dry_run=dry_run, progress=not no_progress)
    click.echo(report.summary())
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} repair(s) could not be completed (see above)")


COMMANDS = [backends_command, runs_command, show_command, metrics_command, migrate_command, sync_command]

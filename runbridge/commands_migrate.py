"""``runbridge migrate`` and ``runbridge sync``: copying runs between backends and repairing
the backends that failed during a run (assembled in `cli`)."""

from __future__ import annotations

from datetime import datetime

import click

from .cliutil import backend_option, one_line_errors, specs_of
from .config import resolve_backends
from .migrate import migrate
from .sync import sync


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
    report = sync(specs_of(backend), run_ids=list(run_ids) or None, dry_run=dry_run, progress=not no_progress)
    click.echo(report.summary())
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} repair(s) could not be completed (see above)")

"""The viewing commands of the `runbridge` command line: ui (the local web app), report (one
self-contained HTML file) and plot (a PNG or SVG chart). They need the ``ui`` extra."""

from __future__ import annotations

import importlib
import webbrowser
from pathlib import Path
from typing import Sequence

import click

from .cliutil import backend_option, one_line_errors, open_workspace
from .media import write_file_atomically

#: Hosts `runbridge ui` serves on without a warning: only this machine can reach them.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _needs_ui_extra() -> None:
    try:
        importlib.import_module("flask")
        importlib.import_module("jinja2")
    except ImportError as exc:
        raise click.ClickException(f"the viewer needs the ui extra ({exc}): pip install 'runbridge[ui]'") from None


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback lets other machines read your runs.")
@click.option("--port", default=5005, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the runs page in the web browser.")
@backend_option
@one_line_errors
def ui_command(host: str, port: int, open_browser: bool, backend: tuple[str, ...]) -> None:
    """Browse runs in a local, read-only web app: runs, a page per run with every metric drawn,
    and comparisons. Several --backend options show the union of their runs.

    \b
    Examples:
      runbridge ui
      runbridge ui -b sqlite:.runbridge/runs.db -b tensorboard:runs/tb -b mlflow:sqlite:///mlflow.db --open
    """
    _needs_ui_extra()
    from .viewer.app import serve

    ws = open_workspace(backend)
    if host not in LOOPBACK:
        click.echo(f"Warning: serving on {host}: other machines can read every run of {', '.join(ws.specs)}.",
                   err=True)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    click.echo(f"runbridge ui on {url} over {', '.join(ws.specs)} (Ctrl-C to stop)")
    if open_browser:
        webbrowser.open(url)
    serve(ws, host=host, port=port)


@click.command("report")
@click.argument("targets", metavar="[EXPERIMENT | RUN]...", nargs=-1)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (self-contained: charts and images embedded).")
@click.option("--title", default=None, help="The report's title.")
@backend_option
@one_line_errors
def report_command(targets: Sequence[str], output: str, title: str | None, backend: tuple[str, ...]) -> None:
    """Write runs as one self-contained HTML file (no network needed to open it): each
    EXPERIMENT's runs, each RUN, or every run when none is named.

    \b
    Examples:
      runbridge report quickstart -o report.html
      runbridge report mnist_1732262400_1a2b3c4d -o run.html -b mlflow:sqlite:///mlflow.db
    """
    if not output.lower().endswith((".html", ".htm")):
        raise click.BadParameter(f"must end in .html, got {output!r}", param_hint="'--output'")
    _needs_ui_extra()
    from .viewer.report import report_html, select_runs

    ws = open_workspace(backend)
    run_ids = select_runs(ws, targets)
    if not run_ids:
        raise click.ClickException(f"no runs in {', '.join(ws.specs)}")
    html = report_html(ws, run_ids, title=title or ("runbridge report: " + ", ".join(targets) if targets
                                                     else "runbridge report"))
    write_file_atomically(Path(output), data=html.encode("utf-8"))
    click.echo(f"Wrote {output}: {len(run_ids)} run(s), {len(html.encode('utf-8')):,} bytes")


@click.command("plot")
@click.argument("run_ids", metavar="RUN [RUN...]", nargs=-1, required=True)
@click.option("--name", "-n", required=True, help="The metric to draw.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="chart.png or chart.svg")
@backend_option
@one_line_errors
def plot_command(run_ids: Sequence[str], name: str, output: str, backend: tuple[str, ...]) -> None:
    """Draw one metric of one or more runs into a PNG or SVG file (a line per run).

    \b
    Examples:
      runbridge plot mnist_1732262400_1a2b3c4d --name loss -o loss.png
      runbridge plot RUN_A RUN_B --name accuracy -o accuracy.svg
    """
    from .plots import check_output

    try:
        check_output(output)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--output'") from None
    from .run import Experiment, Run

    ws = open_workspace(backend)
    runs = [Run(Experiment(ws, ws.find_run(run_id).experiment), run_id) for run_id in dict.fromkeys(run_ids)]
    if len(runs) == 1:
        figure = runs[0].plot(name)
    else:
        figure = runs[0].experiment.plot(name, runs=runs)
    figure.savefig(output)
    click.echo(f"Wrote {output}")

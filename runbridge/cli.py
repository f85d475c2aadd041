"""The `runbridge` command line (click). This module only assembles the commands; their logic
lives in their own modules (`runbridge.commands`: backends, runs, show, metrics;
`runbridge.commands_migrate`: migrate, sync; `runbridge.commands_view`: ui, report, plot;
`runbridge.cli_run`: run). A command's module is imported only when that command runs (or shows
its own help), so ``runbridge --help`` loads click and nothing of the run machinery."""

from __future__ import annotations

import importlib

import click

#: Each command: its module, its click command, and the first words of its help (shown by
#: ``runbridge --help`` without importing the module; a test keeps them equal to the help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "backends": ("runbridge.commands", "backends_command",
                 "List the installed backends, the extra each needs, and whether it can be used here."),
    "metrics": ("runbridge.commands", "metrics_command",
                "Print a run's metrics: as JSON in the azureml get_metrics() shapes, or as CSV"),
    "migrate": ("runbridge.commands_migrate", "migrate_command",
                "Copy runs from backend SRC to backend DST: every metric with its steps and times"),
    "run": ("runbridge.cli_run", "run_command", "Run SCRIPT [ARGS]... unchanged as a submitted run"),
    "runs": ("runbridge.commands", "runs_command",
             "List runs, newest first: id, experiment, name, status, start, duration, last metric values."),
    "show": ("runbridge.commands", "show_command",
             "Show one run: details, tags, properties, files, a summary of its metrics"),
    "sync": ("runbridge.commands_migrate", "sync_command", "Repair the backends a run could not write to"),
    "ui": ("runbridge.commands_view", "ui_command",
           "Browse runs in a local, read-only web app: runs, a page per run with every metric drawn,"),
    "report": ("runbridge.commands_view", "report_command",
               "Write runs as one self-contained HTML file (no network needed to open it): each"),
    "plot": ("runbridge.commands_view", "plot_command",
             "Draw one metric of one or more runs into a PNG or SVG file (a line per run)."),
}


def _shorten(text: str, limit: int) -> str:
    """`text` cut at a word to fit `limit` characters, as click shortens a command's help."""
    if len(text) <= limit:
        return text
    return text[:max(limit - 3, 1)].rsplit(" ", 1)[0].rstrip(",.:;") + "..."


class LazyGroup(click.Group):
    """A click group whose commands are imported when one is asked for by name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(name, _shorten(COMMANDS[name][2], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runbridge")
def main() -> None:
    """runbridge: the Azure ML SDK v1 Run API, logging into SQLite, MLflow and TensorBoard.

    Every command takes --backend SPEC (else RUNBRIDGE_BACKENDS, runbridge.toml, or the default
    store sqlite:.runbridge/runs.db). Run `runbridge COMMAND --help` for an example of each.
    """

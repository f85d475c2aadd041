"""The `runbridge` command line (click). This module only assembles the commands; their logic
lives in their own modules (`runbridge.commands`: backends, runs, show, metrics;
`runbridge.commands_migrate`: migrate, sync; `runbridge.commands_view`: ui, report, plot;
`runbridge.cli_run`: run)."""

from __future__ import annotations

import click

from .cli_run import run_command
from .commands import COMMANDS as INSPECT_COMMANDS
from .commands_migrate import COMMANDS as MIGRATE_COMMANDS
from .commands_view import COMMANDS as VIEW_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runbridge")
def main() -> None:
    """runbridge: the Azure ML SDK v1 Run API, logging into SQLite, MLflow and TensorBoard.

    Every command takes --backend SPEC (else RUNBRIDGE_BACKENDS, runbridge.toml, or the default
    store sqlite:.runbridge/runs.db). Run `runbridge COMMAND --help` for an example of each.
    """


for _command in (run_command, *INSPECT_COMMANDS, *MIGRATE_COMMANDS, *VIEW_COMMANDS):
    main.add_command(_command)

"""``runbridge run SCRIPT [ARGS]...``: an existing script as a submitted run, in the foreground
(registered on the `runbridge.cli.main` group)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import RunbridgeError
from .run import Experiment, Run, Workspace
from .scripts.config import ScriptRunConfig
from .records import FAILED
from .scripts.submit import pipeline_run, submit


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--experiment", "-e", metavar="NAME", help="Experiment of the run (default: the script's name).")
@click.option("--backend", "-b", "backends", multiple=True, metavar="SPEC",
              help="Backend spec, repeatable (default: RUNBRIDGE_BACKENDS, runbridge.toml, "
                   "or sqlite:.runbridge/runs.db).")
@click.option("--tag", "-t", "tags", multiple=True, metavar="KEY[=VALUE]", help="Tag the run, repeatable.")
@click.option("--parent", "-p", metavar="NAME|RUN_ID",
              help="Run the script as a step of a pipeline run (its run.parent): the run with this id, "
                   "or the Running pipeline run with this name, else a new one, ended with the step.")
@click.argument("script", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_command(experiment: str | None, backends: tuple[str, ...], tags: tuple[str, ...], parent: str | None,
                script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT [ARGS]... unchanged as a submitted run: its output is shown and kept
    (user_logs/std_log.txt), outputs/ is uploaded, and the exit code is the script's.

    Inside the script Run.get_context() is this run, and `from azureml.core import Run` works
    without the Azure ML SDK installed. Example: runbridge run -b sqlite:runs.db train.py --lr 0.1

    \b
    A pipeline step (the designer's "Execute Python Script", which logs to run.parent):
      runbridge run -e designer --parent my-pipeline evaluate_step.py
    """
    if not Path(script).is_file():
        raise click.ClickException(f"script {script!r} is not a file")
    tag_dict: dict[str, str | None] = {}
    for tag in tags:
        key, _, value = tag.partition("=")
        tag_dict[key] = value if "=" in tag else None
    try:
        workspace = Workspace(backends=list(backends)) if backends else Workspace.from_config()
        exp = Experiment(workspace, experiment or Path(script).stem)
        config = ScriptRunConfig(source_directory=os.getcwd(), script=script, arguments=list(args))
        pipeline, new_pipeline = pipeline_run(workspace, exp.name, parent) if parent is not None else (None, False)
        try:
            submission = submit(workspace, exp.name, config, tags=tag_dict or None, foreground=True,
                                parent_id=pipeline.id if pipeline else None)
        except BaseException:
            if new_pipeline:
                pipeline.finish(FAILED, "its step could not start")
            raise
    except (RunbridgeError, OSError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    run = Run.from_core(exp, submission.core, submission)
    click.echo(f"runbridge: run {run.id} (experiment {exp.name!r}) in {', '.join(workspace.specs)}", err=True)
    interrupted = False
    while True:
        try:
            details = run.wait_for_completion(show_output=False, raise_on_error=False)
            break
        except KeyboardInterrupt:  # the script got Ctrl-C too (same process group)
            if interrupted:
                click.echo(f"runbridge: stopped waiting; run {run.id} is ended by its supervisor", err=True)
                sys.exit(130)
            interrupted = True
            click.echo("\nrunbridge: waiting for the script to stop (Ctrl-C again to stop waiting)", err=True)
    code = submission.process.wait()
    if new_pipeline:  # the pipeline run this command made ends as its step did
        pipeline.finish(details["status"], (details.get("error") or {}).get("error", {}).get("message"))
        click.echo(f"runbridge: pipeline run {pipeline.id} ({parent!r}) {pipeline.info.status}", err=True)
    info = submission.core.info
    took = f"{(info.end_time - info.start_time) / 1e6:.1f} s" if info.end_time else "?"
    click.echo(f"runbridge: run {run.id} {details['status']} in {took}; view it: {run.get_portal_url()}", err=True)
    sys.exit(code)

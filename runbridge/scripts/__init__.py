"""Script runs: `ScriptRunConfig`, `Experiment.submit`, `runbridge run`, `Run.wait_for_completion`
and the `Run.get_context` hand-off through the environment (docs/api.md, "Script runs").

This package sits below the azureml-shaped classes: it works on a `RunCore` and a `BackendSet`,
and `Experiment.submit` / `Run.wait_for_completion` call down into it. One module per job:
`config` (ScriptRunConfig, Environment), `environment` (the RUNBRIDGE_* variables), `names` (the
reserved names a script run writes), `submit`, `supervisor`, `output` (teeing the script's
output), `waiting`, `snapshot`. Importing the package imports none of them.

How a submitted run works
-------------------------
``experiment.submit(config)`` creates the run (Running) and starts a small **supervisor** process
(``python -c "from runbridge.scripts.supervisor import main; ..."``) in its own session, then
returns the run at once. The supervisor, not the submitting process, owns the run's end, so the
run still ends properly when the submitting process exits early, is killed, or its user presses
Ctrl-C while waiting. The supervisor:

1. zips a **snapshot** of ``source_directory`` (without ``.git``, ``outputs``, ``__pycache__``,
   virtual environments and the run stores: ``.runbridge`` and every file or folder the configured
   backends own, as their ``store_location`` hook says) into the hidden run file
   ``runbridge.snapshot.zip``; ``run.restore_snapshot()`` gives it back. Past 2,000 files or 300 MB (Azure ML's limits) the snapshot is skipped and the
   log says so;
2. starts the script: ``sys.executable SCRIPT ARGS`` with ``cwd=source_directory`` and the
   environment ``RUNBRIDGE_RUN_ID``, ``RUNBRIDGE_EXPERIMENT``, ``RUNBRIDGE_BACKENDS`` (the
   workspace's specs with relative paths made absolute) and ``PYTHONUNBUFFERED=1``, so
   ``Run.get_context()`` in the script, and in every process the script starts, attaches to the run;
3. tees the script's stdout and stderr, as they come, into a local log file (its path is in
   ``run.get_details()["logFiles"]["user_logs/std_log.txt"]`` while the run is Running, and
   ``run.wait_for_completion(show_output=True)`` streams it, from any process on this machine);
4. when the script ends: uploads the files the script wrote or changed in ``outputs/`` during
   the run (files left there by earlier runs are not uploaded again), uploads the log as the run
   file ``user_logs/std_log.txt``, and ends the run: exit 0 -> Completed (unless the script
   itself failed or canceled its run), non-zero -> Failed with the exit code and the last lines
   of stderr as the error, killed by a signal -> Failed naming the signal. ``run.cancel()`` from
   any process stops the script (SIGTERM) and leaves the run Canceled.

``runbridge run SCRIPT ARGS`` is the same thing in the foreground: the supervisor stays in the
terminal's process group (Ctrl-C reaches the script as with ``python SCRIPT``), echoes the
output, and its exit code is the script's; ``azureml.core`` resolves to runbridge in the script
when the real Azure ML SDK is not installed (the shim in ``runbridge/_azureml_shim``).
"""

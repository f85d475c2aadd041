# submit.py: run train.py as a submitted run, as Azure ML's example does, on the local machine.
# Runs are stored where runbridge is configured (RUNBRIDGE_BACKENDS, runbridge.toml, or the
# default SQLite store .runbridge/runs.db in the working folder).

from pathlib import Path

from runbridge import Environment, Experiment, ScriptRunConfig, Workspace

ws = Workspace.from_config()

# Editing a run configuration property on-fly (accepted and ignored: the script runs with this Python).
user_managed_env = Environment("user-managed-env")
user_managed_env.python.user_managed_dependencies = True

exp = Experiment(workspace=ws, name="train-on-local")
src = ScriptRunConfig(source_directory=Path(__file__).parent, script="train.py")
src.run_config.environment = user_managed_env
run = exp.submit(src)
run.wait_for_completion(show_output=True)

metrics = run.get_metrics()
best = min(range(len(metrics["mse"])), key=lambda i: metrics["mse"][i])
print(f"best alpha {metrics['alpha'][best]:.2f} with mse {metrics['mse'][best]:.2f}")
print(len([n for n in run.get_file_names() if n.endswith(".pkl")]), "models:", run.get_portal_url())

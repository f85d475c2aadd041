"""Helpers for tests where several processes (ranks, nodes) log at once: start them as a launcher
would, wait for them, and read what arrived in MLflow's native history."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Sequence

from mlflow import MlflowClient


def start_ranks(script: Path, ranks: int, env: dict[str, str], args: Sequence[str] = (),
                cwd: Path | None = None) -> list[subprocess.Popen]:
    """Start `ranks` processes of `script` with `env` plus RANK and WORLD_SIZE (what a launcher
    such as torchrun gives each process)."""
    return [subprocess.Popen([sys.executable, str(script), *args], cwd=cwd or script.parent,
                             env={**env, "RANK": str(rank), "WORLD_SIZE": str(ranks)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for rank in range(ranks)]


def wait_ranks(procs: list[subprocess.Popen], timeout: float = 300) -> None:
    """Wait for every rank; each must exit 0 (its stderr is the failure message)."""
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err.decode(errors="replace")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def native_history(uri: str, experiment: str, run_id: str, key: str = "loss") -> list:
    """MLflow's own metric history of `key` in the MLflow run holding runbridge run `run_id`."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    [native] = client.search_runs([exp.experiment_id], f"tags.`runbridge.run_id` = '{run_id}'")
    return client.get_metric_history(native.info.run_id, key)

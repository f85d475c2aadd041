"""`ScriptRunConfig` (what to run) and `Environment` (accepted and ignored: this Python runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence


class _Settings:
    """Accepts any attribute chain (``src.run_config.environment.python.x = 1``) and ignores it:
    Azure-only configuration that a local run does not need."""

    def __init__(self, **values: Any):
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _Settings()
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"<settings {sorted(self.__dict__)} (ignored by runbridge)>"


class Environment(_Settings):
    """azureml ``Environment``: accepted and ignored; the script runs with this Python."""

    def __init__(self, name: str = "runbridge-local", *args: Any, **kwargs: Any):
        super().__init__(name=name)

    @classmethod
    def get(cls, workspace: Any = None, name: str = "runbridge-local", *args: Any, **kwargs: Any) -> "Environment":
        """Any named environment: this Python."""
        return cls(name)

    @classmethod
    def _ignored(cls, name: str, *args: Any, **kwargs: Any) -> "Environment":
        """An environment built from a conda, pip or Docker specification: ignored, the script
        runs with this Python."""
        return cls(name)

    from_conda_specification = from_pip_requirements = _ignored
    from_existing_conda_environment = from_dockerfile = _ignored

    def register(self, workspace: Any = None) -> "Environment":
        """Registering is a no-op locally."""
        return self


class ScriptRunConfig:
    """What to run: ``script`` (a path relative to ``source_directory``) with ``arguments``.

    ``environment``, ``compute_target`` and the other Azure-only settings are accepted and ignored:
    the script runs locally with the current Python.
    """

    def __init__(self, source_directory: str | os.PathLike = ".", script: str | os.PathLike | None = None,
                 arguments: Sequence[Any] | None = None, environment: Any = None,
                 command: str | Sequence[Any] | None = None, **ignored: Any):
        if script is None and command is not None:  # azureml's command=["python", "train.py", ...]
            parts = command.split() if isinstance(command, str) else [str(c) for c in command]
            if len(parts) >= 2 and Path(parts[0]).name.startswith("python"):
                script, arguments = parts[1], list(parts[2:]) + list(arguments or [])
            else:
                raise ValueError(f"command {command!r} is not 'python SCRIPT [ARGS]'; runbridge runs Python scripts")
        if script is None:
            raise ValueError("ScriptRunConfig needs script, the file to run inside source_directory")
        if arguments is not None and (isinstance(arguments, (str, bytes)) or not hasattr(arguments, "__iter__")):
            raise TypeError(f"arguments must be a list, got {type(arguments).__name__}")
        self.source_directory = str(source_directory)
        self.script = str(script)
        self.arguments = [a if isinstance(a, str) else str(a) for a in (arguments or [])]
        self.environment = environment
        self.run_config = _Settings(environment=environment, **ignored)

    def __repr__(self) -> str:
        return (f"ScriptRunConfig(source_directory={self.source_directory!r}, script={self.script!r}, "
                f"arguments={self.arguments!r})")

"""Which backends a workspace uses: argument > RUNBRIDGE_BACKENDS > runbridge.toml /
[tool.runbridge] in pyproject.toml (searched upward) > the default SQLite store."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from .errors import RunbridgeError

ENV_BACKENDS = "RUNBRIDGE_BACKENDS"
DEFAULT_BACKENDS = ("sqlite:.runbridge/runs.db",)


def split_specs(text: str) -> list[str]:
    """Comma-separated specs -> a list (blank entries dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _from_toml(path: Path, table: dict) -> list[str] | None:
    backends = table.get("backends")
    if backends is None:
        return None
    if isinstance(backends, str):
        backends = split_specs(backends)
    if not isinstance(backends, list) or not all(isinstance(b, str) for b in backends) or not backends:
        raise RunbridgeError(f"{path}: 'backends' must be a non-empty list of 'name:location' strings")
    return list(backends)


def find_config_file(start: Path | None = None) -> tuple[Path, list[str]] | None:
    """The nearest runbridge.toml or pyproject.toml with [tool.runbridge] backends, upward."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        toml_file = candidate / "runbridge.toml"
        if toml_file.is_file():
            data = tomllib.loads(toml_file.read_text(encoding="utf-8"))
            found = _from_toml(toml_file, data.get("tool", {}).get("runbridge", data))
            if found:
                return toml_file, found
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            table = data.get("tool", {}).get("runbridge")
            if table:
                found = _from_toml(pyproject, table)
                if found:
                    return pyproject, found
    return None


def resolve_backends(explicit: list[str] | tuple[str, ...] | str | None = None,
                     path: str | os.PathLike | None = None) -> list[str]:
    """The backend specs to use, by the documented precedence."""
    if explicit:
        specs = split_specs(explicit) if isinstance(explicit, str) else list(explicit)
        if not specs:
            raise RunbridgeError("backends must name at least one backend spec")
        return specs
    env = os.environ.get(ENV_BACKENDS, "").strip()
    if env:
        return split_specs(env)
    found = find_config_file(Path(path) if path else None)
    if found:
        return found[1]
    return list(DEFAULT_BACKENDS)

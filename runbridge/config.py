"""Which backends a workspace uses: argument > RUNBRIDGE_BACKENDS > runbridge.toml /
[tool.runbridge] in pyproject.toml (searched upward) > the default SQLite store."""

from __future__ import annotations

import os
import re
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


_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(.*)$")  # two letters at least: "C:\..." is a path


def absolute_location(location: str, base: str | os.PathLike | None = None, plain_is_path: bool = True) -> str:
    """A backend location with a relative file path made absolute against `base` (default: the
    working folder), so another process with another working folder finds the same store.

    ``.runbridge/runs.db`` -> ``/abs/.runbridge/runs.db``; ``sqlite:///rel.db`` (a relative
    SQLAlchemy URI) -> ``sqlite:////abs/rel.db``; ``file:rel`` -> ``file:///abs/rel``; network
    addresses (``http://...``) and absolute paths are returned unchanged.
    """
    root = Path(base) if base is not None else Path.cwd()
    match = _URI.match(location)
    if match is None:  # a plain path, or a bare word such as mlflow's "databricks"
        if not location or not (plain_is_path or location.startswith((".", "~")) or "/" in location):
            return location
        return str((root / Path(location).expanduser()).resolve())
    scheme, rest = match.group(1), match.group(2)
    if "://" not in location:  # a nested spec such as mlflow's "sqlite:///..." is handled below
        if scheme.lower() in ("file",):
            return "file://" + str((root / rest).resolve())
        return f"{scheme}:{absolute_location(rest, root)}" if scheme.lower() == "sqlite" else location
    after = location.split("://", 1)[1]
    if scheme.lower().startswith("sqlite"):  # sqlite:///relative.db vs sqlite:////abs.db
        path = after[1:] if after.startswith("/") else None
        if path and not path.startswith("/") and not path.startswith(":memory:"):
            return f"{scheme}:///{(root / path).resolve()}"
        return location
    if scheme.lower() == "file":
        if after and not after.startswith("/"):  # file://rel (non-standard, seen in the wild)
            return "file://" + str((root / after).resolve())
        return location
    return location


def absolute_spec(spec: str, base: str | os.PathLike | None = None) -> str:
    """A ``name:location`` spec whose location is made absolute (see `absolute_location`)."""
    if ":" not in spec:
        return spec
    name, location = spec.split(":", 1)
    # Built-in file backends take a bare path; others (mlflow) may take a bare word ("databricks").
    plain_is_path = name.strip().lower() in ("sqlite", "tensorboard")
    return f"{name}:{absolute_location(location.strip(), base, plain_is_path)}"

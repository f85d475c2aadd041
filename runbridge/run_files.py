"""Tags, properties and run files: the other half of `Run` (a mixin of `runbridge.run.Run`).

Arguments are checked here, before anything is written; the run core keeps what the run holds
(properties are add-only, run files write-once) and writes the records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

from . import shapes
from .media import folder_files, safe_name
from .records import Tag, now_us
from .runcore import RunCore
from .values import check_name, tag_value


class RunFiles:
    """Tags, properties, uploads and downloads; `Run` sets `_core` (`_bind`)."""

    _core: RunCore

    # -- tags and properties --------------------------------------------------------------------
    def tag(self, key: str, value: Any = None) -> None:
        """Set a tag (a None value makes a valueless tag). Allowed on ended runs too."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags at once."""
        if not isinstance(tags, dict):
            raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
        t = now_us()
        records = [Tag(check_name(k, "key"), tag_value(v, f"value of tag {k!r}"), t) for k, v in tags.items()]
        self._core.emit(records)

    def remove_tags(self, keys: str | Iterable[str]) -> None:
        """Remove tags by key (absent keys are ignored)."""
        if isinstance(keys, str):
            keys = [keys]
        t = now_us()
        self._core.emit([Tag(check_name(k, "keys"), None, t, True) for k in keys])

    def get_tags(self) -> dict[str, str | None]:
        return shapes.fold_tags(self._core.read_records())

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties; they are add-only, so changing an existing one raises."""
        if not isinstance(properties, dict):
            raise TypeError(f"properties must be a dict, got {type(properties).__name__}")
        checked = {}
        for key, value in properties.items():
            check_name(key, "properties key")
            checked[key] = tag_value(value, f"property {key!r}")
        self._core.add_properties(checked)

    def get_properties(self) -> dict[str, str | None]:
        return shapes.fold_properties(self._core.read_records())

    # -- files ----------------------------------------------------------------------------------
    def upload_file(self, name: str, path_or_stream: str | os.PathLike | IO[bytes]) -> None:
        """Store a file (or binary stream) as the run file `name`; names are write-once."""
        self._core.upload([(name, path_or_stream)])

    def upload_files(self, names: Sequence[str], paths: Sequence[str | os.PathLike]) -> None:
        """Upload several files; `names` and `paths` pair up."""
        names, paths = list(names), list(paths)
        if len(names) != len(paths):
            raise ValueError(f"names ({len(names)}) and paths ({len(paths)}) must have the same length")
        self._core.upload(list(zip(names, paths)))

    def upload_folder(self, name: str, path: str | os.PathLike) -> None:
        """Upload every file below folder `path` as `name/<relative path>`."""
        root = Path(path)
        if not root.is_dir():
            raise NotADirectoryError(f"path {str(path)!r} is not an existing folder")
        prefix = safe_name(name, "name")
        self._core.upload([(f"{prefix}/{rel}", p) for rel, p in folder_files(root, "path")])

    def get_file_names(self) -> list[str]:
        """Every run file: uploads, outputs/..., images, JSON metrics, user_logs/..."""
        return shapes.file_names(self._core.read_records())

    def download_file(self, name: str, output_file_path: str | os.PathLike | None = None) -> str:
        """Copy run file `name` to `output_file_path` (a file or folder; default: its base name here)."""
        clean = safe_name(name, "name")
        target = Path(output_file_path) if output_file_path is not None else Path(Path(clean).name)
        if target.is_dir():
            target = target / Path(clean).name
        if not self._core.fetch_file(clean, target):
            raise FileNotFoundError(f"run {self._core.id} has no file {clean!r}")
        return str(target)

    def download_files(self, prefix: str | None = None, output_directory: str | os.PathLike | None = None) -> list[str]:
        """Copy every run file whose name starts with `prefix` under `output_directory`."""
        out_dir = Path(output_directory) if output_directory is not None else Path.cwd()
        names = [n for n in self.get_file_names() if prefix is None or n.startswith(prefix)]
        return [self.download_file(n, out_dir / n) for n in names]

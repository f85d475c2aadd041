"""Snapshots: the zip of a submitted run's ``source_directory`` kept as a hidden run file, and
`Run.restore_snapshot` giving it back."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

from ..backends import locate
from ..runcore import RunCore
from .names import SNAPSHOT_FILE

#: Folder names never put in a snapshot (besides virtual environments and the stores in use).
SNAPSHOT_EXCLUDED = frozenset({".git", ".hg", ".svn", "outputs", "__pycache__", ".runbridge", ".ipynb_checkpoints",
                               ".venv", ".mypy_cache", ".pytest_cache", ".tox", "node_modules"})
SNAPSHOT_MAX_FILES = 2000
SNAPSHOT_MAX_BYTES = 300 * 1024 * 1024


def _store_paths(specs: Sequence[str]) -> list[Path]:
    """Local folders/files the configured backends own (never part of a snapshot)."""
    return [Path(p) for spec in specs for p in locate(spec).paths]


def snapshot_files(source: Path, specs: Sequence[str] = ()) -> Iterator[Path]:
    """The files of `source` a snapshot keeps, sorted, skipping version control, outputs, caches,
    virtual environments and the run stores."""
    stores = {p.resolve() for p in _store_paths(specs)}
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SNAPSHOT_EXCLUDED and (here / d).resolve() not in stores
                         and not (here / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            path = here / name
            if path.resolve() not in stores and path.is_file():
                yield path


def make_snapshot(source: Path, zip_path: Path, specs: Sequence[str] = ()) -> str | None:
    """Zip the snapshot of `source` into `zip_path`; returns why it was skipped, or None."""
    files, total = [], 0
    for path in snapshot_files(source, specs):
        files.append(path)
        total += path.stat().st_size
        if len(files) > SNAPSHOT_MAX_FILES or total > SNAPSHOT_MAX_BYTES:
            return (f"the snapshot of {source} was skipped: more than {SNAPSHOT_MAX_FILES} files or "
                    f"{SNAPSHOT_MAX_BYTES // 2**20} MB (keep data outside source_directory)")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, path.relative_to(source).as_posix())
    return None


def restore_snapshot(core: RunCore, path: str | os.PathLike | None = None) -> str:
    """Copy the run's snapshot zip to `path` (a file or folder; default: ``<run id>-snapshot.zip``)."""
    target = Path(path) if path is not None else Path(f"{core.id}-snapshot.zip")
    if target.is_dir():
        target = target / f"{core.id}-snapshot.zip"
    if not core.fetch_file(SNAPSHOT_FILE, target):
        raise FileNotFoundError(f"run {core.id} has no snapshot (only submitted runs keep one)")
    return str(target)

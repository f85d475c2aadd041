"""An example third-party runbridge backend: every record as one line of JSON, one file per run.

It shows the whole plugin surface: a class taking the spec's location, methods marked with
``runbridge.hookimpl``, and an entry point in the group ``runbridge`` (see pyproject.toml).
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
from pathlib import Path
from typing import Sequence

from runbridge import hookimpl
from runbridge.errors import StoreNotFoundError
from runbridge.hookspecs import StoreLocation
from runbridge.media import safe_join, safe_name, write_file_atomically
from runbridge.records import File, Image, Record, RunInfo, record_from_json, record_to_json

__all__ = ["JsonlBackend"]


class JsonlBackend:
    """``jsonl:folder``: ``<folder>/<experiment>/<run id>/records.jsonl`` plus ``files/``."""

    def __init__(self, location: str):
        if not location:
            raise ValueError("the jsonl backend needs a folder, e.g. 'jsonl:runs'")
        self.root = Path(location).expanduser().resolve()
        self._lock = threading.Lock()

    @staticmethod
    @hookimpl
    def store_location(location: str, base: str) -> StoreLocation:
        """The folder, absolute; the store owns it (a script's snapshot leaves it out)."""
        folder = (Path(base) / Path(location).expanduser()).resolve()
        return StoreLocation(str(folder), (str(folder),))

    def _run_dir(self, experiment: str, run_id: str) -> Path:
        return safe_join(self.root, f"{experiment.replace('/', '_')}/{run_id}")

    def _require_root(self) -> None:
        """Read hooks raise this instead of answering "no runs" for a folder that does not exist."""
        if not self.root.is_dir():
            raise StoreNotFoundError(f"no jsonl store at {self.root} (created when a run writes to it)")

    def _find(self, run_id: str) -> Path | None:
        try:
            safe_name(run_id)
        except ValueError:
            return None  # not a run folder this backend writes: never a path out of the store
        for candidate in self.root.glob(f"*/{glob.escape(run_id)}/records.jsonl"):
            return candidate.parent
        return None

    def _append(self, folder: Path, records: Sequence[Record]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(record_to_json(r) + "\n" for r in records)
        with self._lock, open(folder / "records.jsonl", "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())

    @hookimpl
    def start_run(self, run: RunInfo) -> None:
        if self._find(run.run_id) is None:
            self._append(self._run_dir(run.experiment, run.run_id), [run])

    @hookimpl
    def write(self, run: RunInfo, records: Sequence[Record]) -> None:
        folder = self._find(run.run_id) or self._run_dir(run.experiment, run.run_id)
        files = folder / "files"
        stored = []
        for rec in records:
            if type(rec) is File:
                write_file_atomically(safe_join(files, rec.name), data=rec.data, source=rec.source)
                rec = rec._replace(source=None, data=None)
            elif type(rec) is Image and rec.data is not None:
                write_file_atomically(safe_join(files, rec.file_name), data=rec.data)
                rec = rec._replace(data=None)
            stored.append(rec)
        self._append(folder, stored)

    @hookimpl
    def end_run(self, run: RunInfo, status: str) -> None:
        folder = self._find(run.run_id) or self._run_dir(run.experiment, run.run_id)
        self._append(folder, [run._replace(status=status)])

    def _load(self, folder: Path) -> list[Record]:
        with open(folder / "records.jsonl", encoding="utf-8") as fh:
            return [record_from_json(line) for line in fh if line.strip()]

    @hookimpl
    def read(self, experiment: str, run_id: str) -> list[Record] | None:
        self._require_root()
        folder = self._find(run_id)
        if folder is None:
            return None
        records = self._load(folder)
        infos = [r for r in records if type(r) is RunInfo]
        return [infos[-1], *(r for r in records if type(r) is not RunInfo)]

    @hookimpl
    def list_runs(self, experiment: str | None) -> list[RunInfo]:
        self._require_root()
        pattern = "*/*/records.jsonl"
        runs = []
        for path in self.root.glob(pattern):
            with open(path, encoding="utf-8") as fh:
                first = record_from_json(fh.readline())
            info = self.read(first.experiment, first.run_id)[0]
            if experiment is None or info.experiment == experiment:
                runs.append(info)
        return sorted(runs, key=lambda r: r.start_time, reverse=True)

    @hookimpl
    def run_url(self, run: RunInfo) -> str:
        return str(self._find(run.run_id) or self._run_dir(run.experiment, run.run_id))

    @hookimpl
    def fetch_file(self, run: RunInfo, name: str, destination: str) -> bool | None:
        self._require_root()
        folder = self._find(run.run_id)
        if folder is None:
            return None
        source = safe_join(folder / "files", name)
        if not source.is_file():
            return None
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        return True

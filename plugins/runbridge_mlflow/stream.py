"""The exact record stream of one MLflow run, read fast: chunk files (and the latest snapshot)
listed once, fetched straight from the run's artifact repository (a local folder is read in
place; a server's artifacts are downloaded without asking the tracking server for the run again)
and decoded with the garbage collector paused. Chunks are never rewritten, so decoded chunks are
kept in a bounded cache: opening a run and then reading its metrics decodes each chunk once.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from typing import Any

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from runbridge.records import Record, collector_paused

from . import chunks


def local_artifact_dir(uri: str) -> str | None:
    """The local folder of a run's artifacts, or None for a remote artifact store."""
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme
    if not (scheme in ("", "file") or len(scheme) == 1):  # one letter: a Windows drive
        return None
    from mlflow.utils.file_utils import local_file_uri_to_path

    return os.path.abspath(local_file_uri_to_path(uri))


class DecodedCache:
    """Decoded chunks and snapshots by (MLflow run id, file), at most `limit` records in all."""

    def __init__(self, limit: int = 500_000):
        self.limit = limit
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._size = 0

    def get(self, key: tuple[str, str]) -> Any:
        entry = self._items.get(key)
        if entry is None:
            return None
        self._items.move_to_end(key)
        return entry[0]

    def put(self, key: tuple[str, str], item: Any, size: int) -> None:
        if size > self.limit or key in self._items:
            return
        self._items[key] = (item, size)
        self._size += size
        while self._size > self.limit:
            _, (_, dropped) = self._items.popitem(last=False)
            self._size -= dropped


class Stream:
    """The chunk files of one run's stream, and the latest snapshot if any."""

    def __init__(self, client: Any, run: Any, cache: DecodedCache | None = None):
        self.mid = run.info.run_id
        self.cache = cache
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._repo = None
        self.root: str | None = None  # a local folder holding runbridge/ (local artifact stores)
        local = local_artifact_dir(run.info.artifact_uri or "")
        if local is not None:
            self.root = os.path.join(local, chunks.ARTIFACT_DIR)
            self.chunks = self._local_names("records")
            self.snapshots = self._local_names("snapshots")
        else:
            self._repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=client.tracking_uri)
            self.chunks = self._remote_names(chunks.RECORDS_DIR)
            self.snapshots = self._remote_names(chunks.SNAPSHOTS_DIR) if self.chunks else []

    def _local_names(self, sub: str) -> list[str]:
        folder = os.path.join(self.root, sub) if self.root else None
        if not folder or not os.path.isdir(folder):
            return []
        return sorted(n for n in os.listdir(folder) if chunks.CHUNK_RE.match(n))

    def _remote_names(self, path: str) -> list[str]:
        names = (i.path.rsplit("/", 1)[-1] for i in self._repo.list_artifacts(path) if not i.is_dir)
        return sorted(n for n in names if chunks.CHUNK_RE.match(n))

    def _scratch(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="runbridge-mlflow-")
        return self._tmp.name

    def _fetch(self, rel: str) -> bytes:
        if self.root is not None:
            with open(os.path.join(self.root, *rel.split("/")), "rb") as fh:
                return fh.read()
        path = self._repo.download_artifacts(f"{chunks.ARTIFACT_DIR}/{rel}", self._scratch())
        with open(path, "rb") as fh:
            return fh.read()

    def _fetch_chunks(self, names: list[str]) -> list[bytes]:
        if self.root is None and len(names) > 8 and len(names) > len(self.chunks) // 2:
            # most of the folder: one directory download, which fetches files in parallel
            folder = self._repo.download_artifacts(chunks.RECORDS_DIR, self._scratch())
            out = []
            for name in names:
                with open(os.path.join(folder, name), "rb") as fh:
                    out.append(fh.read())
            return out
        return [self._fetch(f"records/{name}") for name in names]

    def uncovered_estimate(self) -> list[str]:
        """Chunks newer than the latest snapshot (by name; `records` reads the exact set)."""
        last = self.snapshots[-1] if self.snapshots else ""
        return [c for c in self.chunks if c > last]

    def _cached(self, name: str) -> Any:
        return self.cache.get((self.mid, name)) if self.cache is not None else None

    def _keep(self, name: str, item: Any, size: int) -> None:
        if self.cache is not None:
            self.cache.put((self.mid, name), item, size)

    def records(self) -> list[Record]:
        """Every record of the stream, in order: the latest snapshot, then the chunks it lacks."""
        out: list[Record] = []
        covered: set[str] = set()
        if self.snapshots:
            name = f"snapshots/{self.snapshots[-1]}"
            hit = self._cached(name)
            if hit is None:
                data = self._fetch(name)
                with collector_paused():
                    hit = chunks.decode_snapshot(data)
                self._keep(name, hit, len(hit[1]))
            covered, snapshot = hit
            out.extend(snapshot)
        needed = [c for c in self.chunks if c not in covered]
        decoded: dict[str, list[Record]] = {}
        for name in needed:
            hit = self._cached(f"records/{name}")
            if hit is not None:
                decoded[name] = hit
        missing = [c for c in needed if c not in decoded]
        if missing:
            blobs = self._fetch_chunks(missing)
            with collector_paused():
                fresh = [chunks.decode_chunk(b) for b in blobs]
            for name, recs in zip(missing, fresh):
                decoded[name] = recs
                self._keep(f"records/{name}", recs, len(recs))
        for name in needed:
            out.extend(decoded[name])
        return out

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

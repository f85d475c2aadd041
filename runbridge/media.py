"""Run files: safe run-relative names, image bytes from a path or a matplotlib plot, hashing."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any, BinaryIO

#: A file system keeps at most 255 bytes per path component; a run file name at most this many characters.
MAX_COMPONENT_BYTES = 255
MAX_NAME_LENGTH = 1024

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
GIF_MAGICS = (b"GIF87a", b"GIF89a")


def safe_name(name: Any, argument: str = "name") -> str:
    """Validate a run-relative file name; return it normalised (POSIX, no './').

    Refuses what could escape the run's artifact root, be ambiguous across backends or fail to
    be stored: absolute paths, '..' components, NUL, backslashes, empty names, lone surrogates,
    components over 255 bytes (UTF-8) and names over 1024 characters. The one check for every
    run-relative name, whether a user gave it or it was read from a store.
    """
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str run-relative file name, got {type(name).__name__}")
    if not name or not name.strip():
        raise ValueError(f"{argument} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{argument} is {len(name)} characters; run file names have at most {MAX_NAME_LENGTH}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{argument} {name!r} contains a lone surrogate ({name[exc.start]!r}) that cannot "
                         "be stored as UTF-8") from None
    if "\x00" in name:
        raise ValueError(f"{argument} {name!r} contains a NUL character")
    if "\\" in name:
        raise ValueError(f"{argument} {name!r} contains a backslash; use '/' to separate folders")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"{argument} {name!r} is absolute; run file names are relative to the run")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"{argument} {name!r} contains '..' and would escape the run's files")
    if not parts:
        raise ValueError(f"{argument} {name!r} names no file")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise ValueError(f"{argument} has a path component of {len(part.encode('utf-8'))} bytes "
                             f"({part[:40]!r}...); file systems allow at most {MAX_COMPONENT_BYTES}")
    return posixpath.join(*parts)


def safe_join(root: str | os.PathLike, name: str) -> Path:
    """`root / name` for a validated run-relative name, guaranteed to stay inside `root`."""
    root_path = Path(root).resolve()
    target = (root_path / safe_name(name)).resolve()
    if root_path != target and root_path not in target.parents:
        raise ValueError(f"name {name!r} resolves outside the run's files")
    return target


def sniff_image(data: bytes) -> str | None:
    """The media type of PNG or JPEG bytes (what `log_image` accepts), else None."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


def media_type_of(data: bytes) -> str:
    """The media type of image bytes another tool stored (PNG, JPEG, GIF), else
    ``application/octet-stream``."""
    if data.startswith(GIF_MAGICS):
        return "image/gif"
    return sniff_image(data) or "application/octet-stream"


def image_from_path(path: str | os.PathLike) -> tuple[bytes, str]:
    """The bytes and media type of a PNG/JPEG file; a clear error for anything else."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not an existing image file")
    data = p.read_bytes()
    media_type = sniff_image(data)
    if media_type is None:
        raise ValueError(f"path {str(path)!r} is not a PNG or JPEG image")
    return data, media_type


def is_plot(value: Any) -> bool:
    """Whether `value` is something `image_from_plot` draws: a matplotlib Figure, the `pyplot`
    module, or Axes (drawn as their figure)."""
    return callable(getattr(value, "savefig", None)) or callable(getattr(getattr(value, "figure", None), "savefig", None))


def image_from_plot(plot: Any, argument: str = "plot") -> bytes:
    """PNG bytes of a matplotlib Figure, of Axes' figure, or of the current figure of `pyplot`."""
    if not is_plot(plot):
        raise TypeError(f"{argument} must be a matplotlib Figure, Axes or the matplotlib.pyplot module, "
                        f"got {type(plot).__name__}")
    savefig = getattr(plot, "savefig", None)
    if not callable(savefig):
        savefig = plot.figure.savefig
    buffer = io.BytesIO()
    savefig(buffer, format="png")
    data = buffer.getvalue()
    if not data.startswith(PNG_MAGIC):
        raise ValueError("plot did not render to PNG")
    return data


def sha256_of(data: bytes | None = None, path: str | os.PathLike | None = None) -> tuple[int, str]:
    """(size, hex sha256) of bytes or of a file, streamed."""
    digest = hashlib.sha256()
    if data is not None:
        digest.update(data)
        return len(data), digest.hexdigest()
    size = 0
    with open(path, "rb") as fh:  # type: ignore[arg-type]
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def read_stream(stream: BinaryIO, argument: str = "path_or_stream") -> bytes:
    """All bytes of a binary stream (text streams are refused: files are bytes)."""
    data = stream.read()
    if isinstance(data, str):
        raise TypeError(f"{argument} is a text stream; open the file in binary mode ('rb')")
    return bytes(data)


def write_file_atomically(destination: Path, *, data: bytes | None = None, source: str | None = None) -> None:
    """Write bytes or copy a file to `destination` through a temporary name (no torn files).

    The temporary name is unique per process and thread, and removed if the write fails; the
    file gets the usual permissions (the umask's), like any file the user writes.
    """
    if data is None and source is None:
        raise ValueError("a file record needs data or source")
    destination.parent.mkdir(parents=True, exist_ok=True)
    # a short temporary name (a 255-byte file name plus a suffix would be too long), unique per
    # process and thread
    tmp = destination.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        if data is not None:
            tmp.write_bytes(data)
        else:
            shutil.copyfile(source, tmp)  # type: ignore[arg-type]
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def folder_files(root: Path, argument: str) -> list[tuple[str, Path]]:
    """(relative POSIX name, path) of every regular file below `root`, sorted. Symbolic links
    (to files or folders) are skipped with one warning: they could point outside the folder."""
    files, links = [], []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            links.append(path.relative_to(root).as_posix())
        elif path.is_file():
            files.append((path.relative_to(root).as_posix(), path))
    if links:
        warnings.warn(f"{argument} {str(root)!r}: skipped {len(links)} symbolic link(s), which could point "
                      f"outside the folder: {', '.join(links[:5])}{' ...' if len(links) > 5 else ''}",
                      stacklevel=3)
    return files

"""Finding the files to ingest under the paths a user gives."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Found:
    path: Path
    root: Path
    explicit: bool  # named on the command line rather than found in a folder


def discover(paths: list[Path]) -> Iterator[Found | tuple[Path, str]]:
    """Yield files under paths in a stable order, or (path, reason) for a path that is unusable.

    Hidden files and folders are skipped; symlinked folders are not followed (no loops).
    Only regular files are yielded: a named pipe or a link to /dev/zero would never end.
    """
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_dir():
            yield from _walk(path)
        else:
            reason = unusable(path)
            yield (path, reason) if reason else Found(path, path.parent, explicit=True)


def unusable(path: Path) -> str | None:
    """Why a path cannot be read as a file (None when it is a regular file we can name)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        # Stored paths are UTF-8 text; a guessed decoding could not be opened again.
        return "file name is not valid UTF-8 (rename the file)"
    try:
        info = path.stat()  # follows links
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (or a chain of links too long to follow)"
        if path.is_symlink():
            return "broken symbolic link"
        if exc.errno == errno.ENOENT:
            return "no such file or folder"
        return exc.strerror or str(exc)
    if not stat.S_ISREG(info.st_mode):
        kind = "named pipe" if stat.S_ISFIFO(info.st_mode) else "device or socket"
        return f"not a regular file ({kind})"
    return None


def _walk(root: Path) -> Iterator[Found | tuple[Path, str]]:
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=errors.append, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            reason = unusable(path)
            yield (path, reason) if reason else Found(path, root, explicit=False)
        for error in errors:
            yield Path(error.filename or folder), error.strerror or str(error)
        errors.clear()

"""Finding the files to ingest under the paths a user gives."""

from __future__ import annotations

import os
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
    """
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_file():
            yield Found(path, path.parent, explicit=True)
        elif path.is_dir():
            yield from _walk(path)
        elif path.is_symlink():
            yield path, "broken symbolic link"
        else:
            yield path, "no such file or folder"


def _walk(root: Path) -> Iterator[Found | tuple[Path, str]]:
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=errors.append, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                yield path, "broken symbolic link"
            else:
                yield Found(path, root, explicit=False)
        for error in errors:
            yield Path(error.filename or folder), error.strerror or str(error)
        errors.clear()

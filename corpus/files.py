"""File helpers for every layer that writes small files a reader may open at any moment
(adapter pointers and manifests, run records, config.toml)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write `text` so a reader sees the old file or the whole new one, never a part.

    The temporary name is unique per call: two processes (or threads) creating the same
    file at once must not rename each other's temporary away.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

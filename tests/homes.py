"""Memory homes for tests: a config written from the defaults with some settings replaced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mem.memory.config import DEFAULT_CONFIG


def make_home(path: Path, **settings: object) -> Path:
    """A home without sentence vectors (half the embedding time), with settings replaced.

    Keys are config.toml keys (in whatever section they stand); values are written as JSON,
    which TOML reads the same for strings, numbers and booleans.
    """
    path.mkdir(parents=True)
    text = DEFAULT_CONFIG
    for key, value in {"sentence_vectors": False, **settings}.items():
        head, sep, tail = text.partition(f"\n{key} = ")
        assert sep, f"no setting {key!r} in the default config"
        text = head + sep + json.dumps(value) + "\n" + tail.partition("\n")[2]
    (path / "config.toml").write_text(text, encoding="utf-8")
    return path


def copy_folder(src: Path, dst: Path) -> Path:
    """A copy of a fixture folder's files, so a test may add to or edit them."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    return dst

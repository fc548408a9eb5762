"""Where a memory lives: --home, else $MEM_HOME, else the platform data directory."""

from __future__ import annotations

import os
from pathlib import Path

# Lives in corpus/ so the lower layers (adapters) can use it; re-exported for memory/.
from mem.corpus.files import write_atomic as write_atomic


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    if home:
        return Path(home).expanduser().resolve()
    if os.environ.get("MEM_HOME"):
        return Path(os.environ["MEM_HOME"]).expanduser().resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir("mem", appauthor=False))

"""Where a memory lives: --home, else $MEM_HOME, else the platform data directory."""

from __future__ import annotations

import os
import secrets
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


HOME_ID = "home-id"


def home_id(home: Path) -> str:
    """This home's id (12 hex digits), made on first use and kept in <home>/home-id: the
    default namespace of its collections on a Chroma server. Created with a hard link, so
    two processes starting at once agree on one id."""
    path = home / HOME_ID
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        draft = home / f".{HOME_ID}.{os.getpid()}"
        draft.write_text(secrets.token_hex(6) + "\n", encoding="utf-8")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first: its id stands
        finally:
            draft.unlink()
    return path.read_text(encoding="utf-8").strip()

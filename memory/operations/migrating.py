"""`mem index push` / `mem index pull`: move a home's vectors between its embedded Chroma
(<home>/chroma) and a Chroma server, without embedding anything again (index/migrate.py).

Both take the writer lock, so no ingest changes the source half-way. The server is
[index] chroma_url unless one is given; the collections there carry the home's prefix, as
they do when the home runs in server mode.
"""

from __future__ import annotations

import dataclasses
import os

from mem.index.migrate import CopyReport, copy_vectors
from mem.index.store import CHROMA_DB, CHROMA_DIR, open_vector_stores


class MigrationError(Exception):
    """The copy cannot start as asked; the message says why in one line."""


def transfer(
    home: str | os.PathLike | None,
    direction: str,
    url: str | None = None,
    progress: bool = True,
) -> CopyReport:
    """Copy the vectors embedded -> server ("push") or server -> embedded ("pull")."""
    from tqdm import tqdm

    from mem.memory.core import Memory
    from mem.memory.lock import writer_lock

    if direction not in ("push", "pull"):
        raise ValueError(f"direction is push or pull, not {direction!r}")
    with Memory(home) as memory:
        if url:
            # The given server, with this home's token and prefix rules.
            memory.config = dataclasses.replace(
                memory.config, index=dataclasses.replace(memory.config.index, chroma_url=url)
            )
        server_at = memory.chroma_server()
        if server_at is None:
            raise MigrationError(
                f"mem index {direction}: no Chroma server: set [index] chroma_url in "
                f"{memory.home / 'config.toml'} or give --url"
            )
        local_dir = memory.home / CHROMA_DIR
        if direction == "push" and not (memory.home / CHROMA_DB).is_file():
            raise MigrationError(f"mem index push: {local_dir} holds no embedded index to push")
        bar = None

        def started(total: int) -> None:
            nonlocal bar
            bar = tqdm(
                total=total,
                desc=f"index {direction}",
                unit="vec",
                unit_scale=True,
                leave=False,
                disable=None if progress else True,
            )

        with writer_lock(memory.home, f"mem index {direction}"):
            model = memory.config.embedding.model
            sentences = memory.config.retrieval.sentence_vectors
            server = open_vector_stores(memory.home, model, server_at, sentences)
            embedded = open_vector_stores(memory.home, model, None, sentences)
            names = (f"embedded {local_dir}", f"server {server_at.url}")
            pair = (embedded, server) if direction == "push" else (server, embedded)
            if direction == "pull":
                names = names[::-1]
            try:
                return copy_vectors(
                    *pair,
                    *names,
                    on_start=started,
                    on_batch=lambda n: bar.update(n) if bar is not None else None,
                )
            finally:
                if bar is not None:
                    bar.close()

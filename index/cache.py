"""Embedding cache keyed by (model, text hash): renamed files and rebuilds re-embed nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mem.corpus.sqlite import connect


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class EmbeddingCache:
    def __init__(self, path: Path, model: str) -> None:
        self.model = model
        self.encoded = 0  # texts this cache had the model encode (the rest were found)
        self._conn = connect(path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, vector BLOB, "
            "PRIMARY KEY (model, key)) WITHOUT ROWID"
        )
        self._conn.commit()

    def embed(
        self, texts: Sequence[str], compute: Callable[[Sequence[str]], np.ndarray]
    ) -> np.ndarray:
        """Vectors for texts, computing (and storing) only the ones not seen before."""
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                (self.model, *part),
            )
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        # Each distinct text once, even when a batch repeats it (a quoted line, a stock reply).
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first.setdefault(k, i)
        missing = list(first.values())
        if missing:
            self.encoded += len(missing)
            fresh = compute([texts[i] for i in missing])
            with self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [
                        (self.model, keys[i], fresh[j].astype(np.float32).tobytes())
                        for j, i in enumerate(missing)
                    ],
                )
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)

    def close(self) -> None:
        self._conn.close()

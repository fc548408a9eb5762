"""Plain records that cross package boundaries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a source, with a locator a person can follow."""

    chunk_id: str
    source: str
    position: int
    text: str
    title: str = ""
    locator: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Document:
    """One ingested file (or one conversation/transcript) as the corpus knows it."""

    source: str
    content_hash: str
    kind: str
    title: str
    n_chunks: int
    ingested_at: str
    size: int = 0


def make_chunk_id(source: str, text: str, position: int) -> str:
    """Deterministic id: the same text at the same place of the same file gets the same id."""
    digest = hashlib.sha256(f"{source}\x00{position}\x00{text}".encode()).hexdigest()
    return digest[:32]

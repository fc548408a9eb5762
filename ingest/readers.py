"""One entry point for every file kind: bytes in, titled draft chunks out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mem.ingest.chunking import ChunkingOptions, DraftChunk, chunk_blocks
from mem.ingest.documents import DOCUMENT_EXTENSIONS, DocumentError, parse_document


class UnsupportedFile(Exception):
    """No reader handles this file."""


@dataclass(frozen=True)
class ReadResult:
    kind: str
    title: str
    chunks: tuple[DraftChunk, ...]


def supported(path: Path) -> bool:
    return path.suffix.lower() in DOCUMENT_EXTENSIONS


def read_file(path: Path, data: bytes, chunking: ChunkingOptions) -> ReadResult:
    """Parse and chunk one file. Raises DocumentError / UnsupportedFile with a short reason."""
    if not supported(path):
        raise UnsupportedFile(f"unsupported file type {path.suffix or '(no extension)'}")
    parsed = parse_document(path, data)
    chunks = chunk_blocks(parsed.blocks, chunking)
    if not chunks:
        raise DocumentError("no text found")
    return ReadResult(kind=parsed.kind, title=parsed.title, chunks=tuple(chunks))

"""Structure-aware chunking: blocks of one heading section are packed into ~target-sized
chunks, long blocks are split at sentence ends, and a little text overlaps between chunks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mem.corpus.text import split_sentences
from mem.ingest.documents import Block

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class ChunkingOptions:
    target_tokens: int = 250
    max_tokens: int = 350
    overlap_tokens: int = 40


@dataclass(frozen=True)
class DraftChunk:
    """A chunk before it has an id: its text and where it came from."""

    text: str
    pages: tuple[int, ...]
    headings: tuple[str, ...]

    @property
    def locator(self) -> str:
        return format_locator(self.pages, self.headings)


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a cheap, model-independent estimate of length."""
    return len(_TOKEN.findall(text))


def format_locator(pages: Sequence[int], headings: Sequence[str]) -> str:
    parts = []
    if pages:
        first, last = min(pages), max(pages)
        parts.append(f"p. {first}" if first == last else f"p. {first}–{last}")
    if headings:
        parts.append(" > ".join(headings))
    return " · ".join(parts)


def _pieces(block: Block, max_tokens: int) -> list[str]:
    """A block as pieces no longer than max_tokens (sentences, or word runs as a last resort)."""
    if count_tokens(block.text) <= max_tokens:
        return [block.text]
    pieces: list[str] = []
    for sentence in split_sentences(block.text):
        if count_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
            continue
        words = sentence.split()
        step = max(1, max_tokens * 2 // 3)
        pieces += [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
    return pieces


def chunk_blocks(
    blocks: Sequence[Block], options: ChunkingOptions | None = None
) -> list[DraftChunk]:
    options = options or ChunkingOptions()
    chunks: list[DraftChunk] = []
    # Sections: runs of blocks under the same heading path; chunks never cross them.
    sections: list[list[Block]] = []
    for block in blocks:
        if sections and sections[-1][0].headings == block.headings:
            sections[-1].append(block)
        else:
            sections.append([block])
    for section in sections:
        chunks += _chunk_section(section, options)
    return chunks


def _chunk_section(section: list[Block], options: ChunkingOptions) -> list[DraftChunk]:
    headings = section[0].headings
    chunks: list[DraftChunk] = []
    texts: list[str] = []
    pages: list[int] = []
    size = 0
    fresh = False  # whether texts holds anything beyond the overlap carried from the last chunk

    def flush() -> None:
        nonlocal texts, pages, size, fresh
        if texts and fresh:
            chunks.append(DraftChunk("\n\n".join(texts), tuple(sorted(set(pages))), headings))
        # Carry the last sentences forward so a fact split at the boundary survives whole.
        carry: list[str] = []
        carried = 0
        if texts and options.overlap_tokens > 0:
            for sentence in reversed(split_sentences(texts[-1])):
                n = count_tokens(sentence)
                if carried + n > options.overlap_tokens:
                    break
                carry.insert(0, sentence)
                carried += n
        texts = [" ".join(carry)] if carry else []
        pages = pages[-1:] if carry and pages else []
        size = carried
        fresh = False

    for block in section:
        for piece in _pieces(block, options.max_tokens):
            n = count_tokens(piece)
            if fresh and (size + n > options.max_tokens or size >= options.target_tokens):
                flush()
            texts.append(piece)
            fresh = True
            if block.page is not None:
                pages.append(block.page)
            size += n
    if texts and fresh:
        chunks.append(DraftChunk("\n\n".join(texts), tuple(sorted(set(pages))), headings))
    return chunks

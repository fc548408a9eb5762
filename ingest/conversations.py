"""Conversations -> chunks of consecutive turns that keep who said what."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mem.corpus.text import split_sentences
from mem.ingest.chats.model import Conversation, Turn
from mem.ingest.chunking import ChunkingOptions, count_tokens


@dataclass(frozen=True)
class TurnSpan:
    """Text of a run of turns (or of a piece of one long turn) and where it sits."""

    text: str
    first: int  # turn numbers, 1-based as a person counts them
    last: int
    date: str  # YYYY-MM-DD of the first turn, or ""
    branch: int  # 0 = the main branch, 1.. = alternate branches


def format_turn(turn: Turn) -> str:
    name = turn.speaker or turn.role.capitalize()
    return f"{name}: {turn.text}"


def turn_locator(title: str, span: TurnSpan) -> str:
    turns = f"turn {span.first}" if span.first == span.last else f"turns {span.first}–{span.last}"
    parts = [f"«{title}»" if title else "", turns]
    if span.branch:
        parts.append(f"branch {span.branch}")
    if span.date:
        parts.append(span.date)
    return " · ".join(p for p in parts if p)


def _pieces(turn: Turn, max_tokens: int) -> list[str]:
    text = format_turn(turn)
    if count_tokens(text) <= max_tokens:
        return [text]
    pieces, current = [], ""
    for sentence in split_sentences(text):
        if current and count_tokens(current) + count_tokens(sentence) > max_tokens:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    return [*pieces, current] if current else pieces


def chunk_turns(turns: Sequence[Turn], options: ChunkingOptions, branch: int = 0) -> list[TurnSpan]:
    """Pack whole turns into chunks near the target size; a long turn is split by sentences."""
    spans: list[TurnSpan] = []
    texts: list[str] = []
    first = last = 0
    date = ""
    size = 0
    for turn in turns:
        number = turn.index + 1
        for piece in _pieces(turn, options.max_tokens):
            n = count_tokens(piece)
            if texts and (size + n > options.max_tokens or size >= options.target_tokens):
                spans.append(TurnSpan("\n\n".join(texts), first, last, date, branch))
                texts, size = [], 0
            if not texts:
                first, date = number, (turn.timestamp or "")[:10]
            texts.append(piece)
            last = number
            size += n
    if texts:
        spans.append(TurnSpan("\n\n".join(texts), first, last, date, branch))
    return spans


def chunk_conversation(conversation: Conversation, options: ChunkingOptions) -> list[TurnSpan]:
    spans = chunk_turns(conversation.turns, options)
    for number, branch in enumerate(conversation.branches, start=1):
        spans += chunk_turns(branch, options, branch=number)
    return spans

"""Transcripts -> chunks of consecutive segments that keep their start–end times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mem.ingest.chunking import ChunkingOptions, count_tokens


@dataclass(frozen=True)
class TimedSpan:
    text: str
    start: float
    end: float


def format_timestamp(seconds: float) -> str:
    """ "12:05" for a citation; "1:02:05" from the first hour on."""
    whole = max(0, int(seconds))  # floor: a citation should point before the words, not after
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def span_locator(span: TimedSpan) -> str:
    return f"{format_timestamp(span.start)}–{format_timestamp(span.end)}"


def chunk_segments(segments: Sequence[dict], options: ChunkingOptions) -> list[TimedSpan]:
    """Group segments ({start, end, text}) into chunks near the target size, never splitting one."""
    spans: list[TimedSpan] = []
    texts: list[str] = []
    start = end = 0.0
    size = 0
    for segment in segments:
        text = segment["text"].strip()
        if not text:
            continue
        n = count_tokens(text)
        if texts and (size + n > options.max_tokens or size >= options.target_tokens):
            spans.append(TimedSpan(" ".join(texts), start, end))
            texts, size = [], 0
        if not texts:
            start = segment["start"]
        texts.append(text)
        end = segment["end"]
        size += n
    if texts:
        spans.append(TimedSpan(" ".join(texts), start, end))
    return spans

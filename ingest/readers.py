"""One entry point for every file kind: bytes in, titled pieces (chunks before ids) out."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mem.ingest.audio import is_media_file
from mem.ingest.chats import ChatParseError, Conversation, detect_chat_format, parse_chat_file
from mem.ingest.chunking import ChunkingOptions, chunk_blocks
from mem.ingest.conversations import chunk_conversation, turn_locator
from mem.ingest.documents import DOCUMENT_EXTENSIONS, DocumentError, parse_document
from mem.ingest.transcripts import chunk_segments, span_locator

# Extensions that may hold a chat export; .md/.txt are checked by content first.
CHAT_EXTENSIONS = frozenset({".json", ".jsonl", ".zip", ".txt", ".md", ".markdown"})


class UnsupportedFile(Exception):
    """No reader handles this file."""


@dataclass(frozen=True)
class Piece:
    """A chunk before it has an id."""

    text: str
    locator: str
    title: str
    meta: dict
    position: int
    # Chunk ids are made from (scope, text, position). Documents use their path; chat turns
    # use their conversation, so the same conversation in two exports is one set of chunks.
    id_scope: str | None = None


@dataclass(frozen=True)
class ReadResult:
    kind: str
    title: str
    pieces: tuple[Piece, ...]
    conversations: tuple[Conversation, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def supported(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in DOCUMENT_EXTENSIONS or suffix in CHAT_EXTENSIONS or is_media_file(path)


def media_pieces(title: str, segments: list[dict], language: str, chunking: ChunkingOptions):
    """Pieces of a transcript: consecutive segments, cited by their start–end time."""
    return tuple(
        Piece(
            text=span.text,
            locator=span_locator(span),
            title=title,
            meta={"start": span.start, "end": span.end, "language": language},
            position=position,
        )
        for position, span in enumerate(chunk_segments(segments, chunking))
    )


def read_file(path: Path, data: bytes, chunking: ChunkingOptions) -> ReadResult:
    """Parse and chunk one file. Raises DocumentError / ChatParseError / UnsupportedFile."""
    if not supported(path):
        raise UnsupportedFile(f"unsupported file type {path.suffix or '(no extension)'}")
    chat_format = detect_chat_format(path) if path.suffix.lower() in CHAT_EXTENSIONS else None
    if chat_format:
        return _read_chat(path, chat_format, chunking)
    if path.suffix.lower() not in DOCUMENT_EXTENSIONS:
        _check_container(path, data)
        raise UnsupportedFile(f"not a chat export this version reads ({path.suffix} file)")
    parsed = parse_document(path, data)
    drafts = chunk_blocks(parsed.blocks, chunking)
    if not drafts:
        raise DocumentError("no text found")
    pieces = []
    for position, draft in enumerate(drafts):
        meta: dict = {"pages": list(draft.pages), "headings": list(draft.headings)}
        if draft.headings:
            meta["context"] = " > ".join(draft.headings)
        pieces.append(Piece(draft.text, draft.locator, parsed.title, meta, position))
    return ReadResult(kind=parsed.kind, title=parsed.title, pieces=tuple(pieces))


def _check_container(path: Path, data: bytes) -> None:
    """A .json/.jsonl/.zip that is broken is an error; a valid one of another kind is not
    ours to read (a package.json beside notes), and is skipped."""
    suffix = path.suffix.lower()
    if not data.strip():
        raise DocumentError("empty file")
    if suffix == ".zip":
        if not zipfile.is_zipfile(path):
            raise DocumentError("not a zip archive (damaged or cut short)")
        return
    if suffix not in (".json", ".jsonl") or len(data) > 64 * 2**20:
        return  # parsing a huge JSON only to skip it is not worth the memory
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError("binary data, not JSON") from None
    if "\x00" in text:
        raise DocumentError("binary data, not JSON (NUL bytes)")
    lines = [text] if suffix == ".json" else text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}" if suffix == ".json" else f"line {number}"
            raise DocumentError(f"invalid JSON ({exc.msg} at {where})") from None
        except RecursionError:
            raise DocumentError("invalid JSON (nested too deeply)") from None


def _read_chat(path: Path, chat_format: str, chunking: ChunkingOptions) -> ReadResult:
    result = parse_chat_file(path)
    if not result.conversations:
        reason = "; ".join(result.errors) or "no conversations with text"
        raise ChatParseError(reason)
    pieces = []
    for conversation in result.conversations:
        for span in chunk_conversation(conversation, chunking):
            meta = {
                "conversation_id": conversation.conversation_id,
                "turns": [span.first, span.last],
                "branch": span.branch,
                "date": span.date,
                "context": conversation.title,
            }
            pieces.append(
                Piece(
                    text=span.text,
                    locator=turn_locator(conversation.title, span),
                    title=conversation.title,
                    meta=meta,
                    position=span.branch * 100_000 + span.first,
                    id_scope=f"conversation:{conversation.conversation_id}",
                )
            )
    title = result.conversations[0].title if len(result.conversations) == 1 else path.name
    return ReadResult(
        kind=f"chat:{chat_format}",
        title=title,
        pieces=tuple(pieces),
        conversations=tuple(result.conversations),
        warnings=tuple(result.errors),
    )

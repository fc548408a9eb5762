"""Chat-log parsers: ChatGPT exports, nexus-ai-chat-importer Obsidian notes, Telegram
Desktop exports, WhatsApp "Export chat" text files and generic chat JSONL, each turned into
plain `Conversation` records (main branch plus alternate branches). Storage is not here."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from mem.ingest.chats.archive import MAX_RATIO, MAX_UNCOMPRESSED, read_member
from mem.ingest.chats.chatgpt import parse_chatgpt
from mem.ingest.chats.detect import (
    HEAD_BYTES,
    chat_file_in_dir,
    chat_member_in_zip,
    detect_chat_format,
    detect_head,
)
from mem.ingest.chats.jsonl import parse_jsonl
from mem.ingest.chats.model import ChatParseError, ChatParseResult, Conversation, Turn
from mem.ingest.chats.nexus import parse_nexus
from mem.ingest.chats.telegram import parse_telegram
from mem.ingest.chats.whatsapp import parse_whatsapp

PARSERS: dict[str, Callable[[bytes, str], ChatParseResult]] = {
    "chatgpt": parse_chatgpt,
    "nexus": parse_nexus,
    "telegram": parse_telegram,
    "whatsapp": parse_whatsapp,
    "jsonl": parse_jsonl,
}

__all__ = [
    "MAX_RATIO",
    "MAX_UNCOMPRESSED",
    "PARSERS",
    "ChatParseError",
    "ChatParseResult",
    "Conversation",
    "Turn",
    "detect_chat_format",
    "parse_chat_bytes",
    "parse_chat_file",
]


def parse_chat_file(
    path: Path, max_bytes: int = MAX_UNCOMPRESSED, max_ratio: float = MAX_RATIO
) -> ChatParseResult:
    """Parse a chat export: a file, an export .zip, or an unpacked export folder.

    Conversations that are damaged inside a multi-conversation file are listed in
    `errors` and the rest are kept; a file that cannot be read at all (not a chat export,
    cut before its first conversation, a zip bomb) raises ChatParseError."""
    path = Path(path)
    if path.is_dir():
        found = chat_file_in_dir(path)
        if found is None:
            raise ChatParseError(f"{path.name}: no conversations.json or result.json inside")
        path = found
    try:
        if zipfile.is_zipfile(path):
            return _parse_zip(path, max_bytes, max_ratio)
        data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ChatParseError(f"{path.name}: cannot read ({exc})") from exc
    return parse_chat_bytes(data, path.name)


def parse_chat_bytes(data: bytes, name: str, fmt: str | None = None) -> ChatParseResult:
    """Parse the bytes of a (non-zip) chat file; `name` is used in messages and, for
    formats without ids of their own, in conversation ids; `fmt` skips detection."""
    fmt = fmt or detect_head(data[:HEAD_BYTES], name)
    if fmt is None:
        raise ChatParseError(f"{name}: not a recognised chat export")
    return PARSERS[fmt](data, name)


def _parse_zip(path: Path, max_bytes: int, max_ratio: float) -> ChatParseResult:
    found = chat_member_in_zip(path)
    if found is None:
        raise ChatParseError(f"{path.name}: no chat export inside the zip")
    member, fmt = found
    data = read_member(path, member, max_bytes=max_bytes, max_ratio=max_ratio)
    # Parsers build ids from the member's own file name only, so a zipped and an unzipped
    # copy of one export get the same ids; messages still name the archive.
    return PARSERS[fmt](data, f"{path.name}/{member}")

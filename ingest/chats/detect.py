"""Which chat format a file holds, judged by its first bytes rather than its name."""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path, PurePath

from mem.ingest.chats.jsonl import is_chat_line
from mem.ingest.chats.nexus import is_nexus_note
from mem.ingest.chats.whatsapp import header

HEAD_BYTES = 64 * 1024
_CHATGPT = re.compile(r'"mapping"\s*:\s*\{')
_TELEGRAM_MESSAGE = re.compile(r'"(?:date_unixtime|from_id|text_entities)"\s*:')
_TELEGRAM_ACCOUNT = re.compile(r'"personal_information"\s*:\s*\{')
_ZIP_CANDIDATES = (".json", ".txt", ".md", ".jsonl")


def detect_chat_format(path: Path) -> str | None:
    """ "chatgpt", "nexus", "telegram", "whatsapp", "jsonl", or None for anything else
    (a plain note, a document). Reads at most the first 64 KB (of one zip member)."""
    path = Path(path)
    if path.is_dir():
        found = chat_file_in_dir(path)
        return detect_chat_format(found) if found else None
    if not path.is_file():
        return None
    if zipfile.is_zipfile(path):
        try:
            found = chat_member_in_zip(path)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError):
            return None  # a damaged archive is not something we can call a chat export
        return found[1] if found else None
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    return detect_head(head, path.name)


def detect_head(head: bytes, name: str) -> str | None:
    """The format of a file from its first bytes (the file may continue past them)."""
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if not text:
        return None
    if text[0] in "[{" and (found := _detect_json(text)):
        return found
    if is_nexus_note(text):
        return "nexus"
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if header(first_line):
        return "whatsapp"
    return None


def _detect_json(text: str) -> str | None:
    if _CHATGPT.search(text) and '"create_time"' in text:
        return "chatgpt"
    if text[0] == "{":
        first_line = text.split("\n", 1)[0]
        try:
            one = json.loads(first_line)
        except json.JSONDecodeError:
            one = None
        if one is not None and is_chat_line(one):
            return "jsonl"
        if _TELEGRAM_ACCOUNT.search(text) or (
            '"messages"' in text and _TELEGRAM_MESSAGE.search(text)
        ):
            return "telegram"
        if one is None and _first_line_cut(text) and _jsonl_prefix(first_line):
            return "jsonl"  # a JSONL whose first line is longer than the head
    return None


def _first_line_cut(text: str) -> bool:
    return "\n" not in text


def _jsonl_prefix(line: str) -> bool:
    return bool(re.match(r'\{\s*"(?:role|messages|conversations|from)"\s*:', line))


def chat_file_in_dir(folder: Path) -> Path | None:
    """The export file inside an unpacked export folder (ChatGPT or Telegram Desktop)."""
    for file_name in ("conversations.json", "result.json"):
        candidate = folder / file_name
        if candidate.is_file():
            return candidate
    return None


def chat_member_in_zip(path: Path) -> tuple[str, str] | None:
    """(member name, format) of the chat file inside an export zip, or None. A ChatGPT
    export's conversations.json wins; otherwise the first member that detects as a chat
    (a WhatsApp "_chat.txt", a Telegram result.json, …). Only member heads are read."""
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        infos.sort(key=lambda i: (PurePath(i.filename).name != "conversations.json", i.filename))
        for info in infos:
            if not info.filename.lower().endswith(_ZIP_CANDIDATES):
                continue
            with archive.open(info) as stream:
                head = stream.read(HEAD_BYTES)
            kind = detect_head(head, info.filename)
            if kind is not None:
                return info.filename, kind
    return None

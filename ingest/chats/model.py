"""Plain records for parsed chat logs, and the small helpers every format parser shares."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

# The corpus owns the chat records, so a parsed chat is stored as it is; re-exported here.
from mem.corpus.records import Conversation as Conversation
from mem.corpus.records import Turn as Turn
from mem.corpus.records import format_utc


class ChatParseError(Exception):
    """A chat file that cannot be read at all; the message names the file and the problem."""


@dataclass
class ChatParseResult:
    conversations: list[Conversation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def stable_hash(*parts: object) -> str:
    """A short, deterministic id from the given parts (None counts as empty)."""
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:24]


class TurnIds:
    """Hash-based turn ids for formats without message ids.

    Two identical messages (same time, speaker and text, e.g. "ok" twice in one minute)
    would hash alike, so the n-th repeat gets a "-n" suffix; earlier messages keep their ids
    when an export grows, because repeats are numbered in file order.
    """

    def __init__(self, conversation_id: str) -> None:
        self._conversation_id = conversation_id
        self._seen: Counter[str] = Counter()

    def __call__(self, timestamp: str | None, speaker: str, text: str) -> str:
        base = stable_hash(self._conversation_id, timestamp, speaker, text)
        n = self._seen[base]
        self._seen[base] += 1
        return base if n == 0 else f"{base}-{n}"


def iso_from_unix(value: object) -> str | None:
    """Unix seconds (int, float or numeric string) -> "2024-03-01T12:00:05Z"; None if unusable."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return format_utc(moment)


def iso_from_datetime(moment: datetime) -> str:
    """Aware datetimes become UTC with a Z; naive ones (a local wall-clock time whose zone
    the source never recorded) are written without any zone rather than with a false Z."""
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    return format_utc(moment)


def iso_from_string(value: object) -> str | None:
    """An ISO 8601 string (with or without zone) -> normalised ISO; None if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return iso_from_datetime(datetime.fromisoformat(text))
    except ValueError:
        return None


def decode_text(data: bytes) -> str:
    """Bytes of a text export -> str. UTF-8 first (exports are UTF-8); a file re-saved by
    some editor in a legacy code page (cp1251 for Russian users) is guessed with
    charset-normalizer instead of failing."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode("utf-8", errors="replace")


def byte_offset(text: str, char_pos: int) -> int:
    """Where a character position of decoded text lies in the UTF-8 file, for error messages."""
    return len(text[:char_pos].encode("utf-8", "surrogatepass"))

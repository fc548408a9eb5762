"""WhatsApp "Export chat" text files, Android and iOS, any locale's numeric dates:

    12/31/23, 11:59 PM - Alice: text          (Android, US)
    31.12.23, 23:59 - Алиса: текст            (Android, Europe/Russia)
    [31.12.2023, 23:59:59] Alice: text        (iOS)

A line without such a header continues the previous message. Lines without a "Name: "
part are system notices (encryption, joins, subject changes) and are skipped, as are iOS
notices, whose text starts with an invisible U+200E mark. Media placeholders become
"[media]". The export records no time zone and no account owner, so times are naive
local ISO strings (no "Z") and every speaker has role "other".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from mem.ingest.chats.dates import guess_day_first, scan_stamp, to_datetime
from mem.ingest.chats.model import (
    ChatParseError,
    ChatParseResult,
    Conversation,
    Turn,
    TurnIds,
    decode_text,
    iso_from_datetime,
    stable_hash,
)

_STAMP = (
    r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4},?\s\d{1,2}[:.]\d{2}(?:[:.]\d{2})?"
    r"(?:[\s\u202f\u00a0]?(?:[AaPp]\.?\s?[Mm]\.?))?"
)
ANDROID_LINE = re.compile(rf"^(?P<stamp>{_STAMP})\s[-–]\s(?P<rest>.*)$")
IOS_LINE = re.compile(rf"^[\u200e\u200f]?\[(?P<stamp>{_STAMP})\]\s(?P<rest>.*)$")

_MEDIA = re.compile(
    r"^(?:<[^<>]*(?:omitted|отсутству|[Бб]ез медиа)[^<>]*>"
    r"|<(?:attached|прикреплено|вложение): [^<>]*>"
    r"|(?:.*\u200e)?(?:image|video|audio|sticker|GIF|document|Contact card) omitted"
    r"|(?:.*\u200e)?(?:изображение|видео|аудио|стикер|GIF|документ)\S* (?:отсутствует|опущен\S*)"
    r"|.+ \((?:file attached|файл прикреплён|файл прикреплен|файл добавлен)\))$",
    re.IGNORECASE,
)
_DELETED = re.compile(
    r"^(?:This message was deleted|You deleted this message|Данное сообщение удалено"
    r"|Это сообщение удалено|Вы удалили (?:данное|это) сообщение)\.?$"
)
_EDITED = re.compile(r"\s*<(?:This message was edited|Сообщение изменено|Это сообщение изменено)>$")
_TITLE = re.compile(
    r"^(?:WhatsApp Chat(?: with| -)?|Чат WhatsApp с|Chat de WhatsApp con)\s*(?P<title>.+)$"
)
_BIDI = dict.fromkeys(
    map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


@dataclass
class _Message:
    stamp: str
    speaker: str | None  # None for a system notice
    lines: list[str] = field(default_factory=list)


def header(line: str) -> re.Match[str] | None:
    """The timestamp header of a WhatsApp line, Android or iOS, or None."""
    return ANDROID_LINE.match(line) or IOS_LINE.match(line)


def parse_whatsapp(data: bytes, name: str) -> ChatParseResult:
    messages = _messages(decode_text(data))
    if not messages:
        raise ChatParseError(f"{name}: no WhatsApp message lines found")
    stamps = [scan_stamp(m.stamp) for m in messages]
    day_first = guess_day_first(s for s in stamps if s)
    drafts: list[tuple[str | None, str, str]] = []
    for message, stamp in zip(messages, stamps, strict=True):
        text = _message_text(message)
        if message.speaker is None or text is None:
            continue
        moment = to_datetime(stamp, day_first) if stamp else None
        drafts.append((iso_from_datetime(moment) if moment else None, message.speaker, text))
    if not drafts:
        raise ChatParseError(f"{name}: only system notices, no messages")
    # Identity = the first message, which stays the same when the chat is exported again
    # later (with more messages, or with media), whatever the file is named.
    conversation_id = stable_hash("whatsapp", *drafts[0])
    turn_ids = TurnIds(conversation_id)
    turns = tuple(
        Turn(i, "other", speaker, text, timestamp, turn_ids(timestamp, speaker, text))
        for i, (timestamp, speaker, text) in enumerate(drafts)
    )
    conversation = Conversation(
        conversation_id=conversation_id,
        title=_title(name, turns),
        source_format="whatsapp",
        created=turns[0].timestamp,
        turns=turns,
    )
    return ChatParseResult(conversations=[conversation])


def _messages(text: str) -> list[_Message]:
    messages: list[_Message] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        match = header(line)
        if match is None:
            if messages:
                messages[-1].lines.append(line)
            continue
        speaker, body = _split_sender(match.group("rest"))
        messages.append(_Message(match.group("stamp"), speaker, [body]))
    return messages


def _split_sender(rest: str) -> tuple[str | None, str]:
    name, sep, body = rest.partition(": ")
    if not sep:
        return None, rest
    speaker = name.translate(_BIDI).strip()
    # A subject change ("Alice changed the subject to "a: b"") also contains ": ";
    # such notices quote the subject, and display names never contain quotes.
    if not speaker or len(speaker) > 80 or any(q in speaker for q in '"«»“”„'):
        return None, rest
    return speaker, body


def _message_text(message: _Message) -> str | None:
    """The text to keep, or None for a notice or a deleted message."""
    first = message.lines[0]
    is_media = bool(_MEDIA.match(first.strip().lstrip("\u200e\u200f")))
    if first.startswith("\u200e") and not is_media:
        return None  # iOS system notice, written under the chat's own name
    lines = [line.rstrip() for line in message.lines]
    lines[0] = "[media]" if is_media else first.strip()
    text = _EDITED.sub("", "\n".join(lines).strip()).translate(_BIDI).strip()
    if not text or _DELETED.match(text):
        return None
    return text


def _title(name: str, turns: tuple[Turn, ...]) -> str:
    path = PurePath(name)
    for stem in (path.stem, path.parent.stem):
        match = _TITLE.match(stem)
        if match:
            return match.group("title").strip()
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    if path.stem.lower() in ("_chat", "chat", "") and speakers:
        return "WhatsApp: " + ", ".join(speakers[:3])
    return path.stem

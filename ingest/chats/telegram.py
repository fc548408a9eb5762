"""Telegram Desktop JSON export (result.json): one chat, or the whole account.

- single chat: {"name", "type", "id", "messages": [...]}
- whole account: {"personal_information": {"user_id": …}, "chats": {"list": [...]},
  "left_chats": {"list": [...]}}

Service messages (joins, pins, calls) are skipped. `text` is a string or a list of plain
strings and entity objects ({"type": "bold"|"link"|…, "text": …}); both become plain text.
A message that is only media becomes "[media]"; media with a caption "[media] caption".
Roles: the account owner is "user", everyone else "other". A full export names the owner
(personal_information.user_id). Without it (a single-chat export) the owner is known only
in a personal or bot chat, whose id is the other party's user id (sender "user<id>"), so
the one other sender there is the owner; in a single group export everyone is "other".
"""

from __future__ import annotations

import json
from typing import Any

from mem.ingest.chats.model import (
    ChatParseError,
    ChatParseResult,
    Conversation,
    Turn,
    byte_offset,
    iso_from_string,
    iso_from_unix,
)

_MEDIA_KEYS = ("photo", "file", "media_type", "sticker_emoji", "contact_information")
_TITLES = {"saved_messages": "Saved Messages", "replies": "Replies"}


def parse_telegram(data: bytes, name: str) -> ChatParseResult:
    text = data.decode("utf-8-sig", errors="replace")
    try:
        export = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "truncated JSON" if not text.rstrip().endswith("}") else "invalid JSON"
        raise ChatParseError(f"{name}: {what} at byte {byte_offset(text, exc.pos)}") from exc
    if not isinstance(export, dict):
        raise ChatParseError(f"{name}: not a Telegram export (top level is not an object)")
    if isinstance(export.get("chats"), dict):
        owner = (export.get("personal_information") or {}).get("user_id")
        chats = _chat_list(export, "chats") + _chat_list(export, "left_chats")
        owner_id = f"user{owner}" if owner is not None else None
    elif isinstance(export.get("messages"), list):
        chats, owner_id = [export], None
    else:
        raise ChatParseError(f"{name}: not a Telegram export (no 'messages' or 'chats')")
    result = ChatParseResult()
    for number, chat in enumerate(chats):
        try:
            conversation = _conversation(chat, owner_id, name, number)
        except ChatParseError as exc:
            result.errors.append(str(exc))
            continue
        if conversation.turns:
            result.conversations.append(conversation)
    return result


def _chat_list(export: dict[str, Any], key: str) -> list[Any]:
    block = export.get(key)
    chats = block.get("list") if isinstance(block, dict) else None
    return chats if isinstance(chats, list) else []


def _single_chat_owner(chat: dict[str, Any]) -> str | None:
    """The owner's sender id in a one-chat export, when the chat type reveals it."""
    if chat.get("type") not in ("personal_chat", "bot_chat"):
        return None
    peer = f"user{chat.get('id')}"
    senders = {m.get("from_id") for m in chat.get("messages") or [] if isinstance(m, dict)}
    others = senders - {peer, None}
    # Only trust the rule when the peer really appears and exactly one other sender does.
    if peer in senders and len(others) == 1:
        return others.pop()
    return None


def _conversation(chat: Any, owner_id: str | None, name: str, number: int) -> Conversation:
    if not isinstance(chat, dict) or chat.get("id") is None:
        raise ChatParseError(f"{name}: chat {number} has no 'id'")
    messages = chat.get("messages")
    if not isinstance(messages, list):
        raise ChatParseError(f"{name}: chat {number} ({chat.get('name')!r}) has no 'messages'")
    owner_id = owner_id or _single_chat_owner(chat)
    # Everything in Saved Messages was put there by the owner, whoever first wrote it.
    everyone_owner = chat.get("type") == "saved_messages"
    turns: list[Turn] = []
    for message in messages:
        turn = _turn(message, len(turns), owner_id, everyone_owner)
        if turn is not None:
            turns.append(turn)
    title = chat.get("name") or _TITLES.get(str(chat.get("type")), f"Telegram chat {chat['id']}")
    return Conversation(
        conversation_id=str(chat["id"]),
        title=str(title),
        source_format="telegram",
        created=turns[0].timestamp if turns else None,
        turns=tuple(turns),
    )


def _turn(message: Any, index: int, owner_id: str | None, everyone_owner: bool) -> Turn | None:
    if not isinstance(message, dict) or message.get("type", "message") != "message":
        return None
    text = _message_text(message)
    if not text or message.get("id") is None:
        return None
    sender = message.get("from_id")
    is_owner = everyone_owner or (owner_id is not None and sender == owner_id)
    timestamp = iso_from_unix(message.get("date_unixtime")) or iso_from_string(message.get("date"))
    return Turn(
        index=index,
        role="user" if is_owner else "other",
        speaker=str(message.get("from") or sender or "Deleted Account"),
        text=text,
        timestamp=timestamp,
        turn_id=str(message["id"]),
    )


def _message_text(message: dict[str, Any]) -> str:
    text = flatten_text(message.get("text")).strip()
    poll = message.get("poll")
    if isinstance(poll, dict) and poll.get("question"):
        text = f"[poll] {flatten_text(poll['question'])}\n{text}".strip()
    if any(message.get(key) for key in _MEDIA_KEYS):
        return f"[media] {text}" if text else "[media]"
    return text


def flatten_text(value: Any) -> str:
    """Telegram's text: a string, or a list of strings and {"type", "text"} entities."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return flatten_text(value.get("text"))
    if isinstance(value, list):
        return "".join(flatten_text(piece) for piece in value)
    return ""

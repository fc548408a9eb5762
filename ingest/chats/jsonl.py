"""Generic chat JSONL, in the shapes fine-tuning and logging tools write:

- one message per line, {"role", "content"}: the whole file is one conversation;
- one conversation per line, {"messages": [...]} (OpenAI chat format) or
  {"conversations": [{"from", "value"}, ...]} (ShareGPT).

`content` may be a string or a list of parts ({"type": "text", "text": …}; images become
"[image]"). Roles: user/human -> "user", assistant/gpt/model/bot -> "assistant",
system/developer -> "system"; tool and function results are skipped (machine output).
A bad line is reported in `errors` and the rest is kept.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from mem.ingest.chats.model import (
    ChatParseError,
    ChatParseResult,
    Conversation,
    Turn,
    TurnIds,
    decode_text,
    iso_from_string,
    iso_from_unix,
    stable_hash,
)

_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "developer": "system",
}
_SKIPPED_ROLES = {"tool", "function", "ipython", "observation"}
_SPEAKERS = {"user": "User", "assistant": "Assistant", "system": "System"}


def is_chat_line(obj: Any) -> bool:
    """Does one decoded JSONL line look like a chat message or a chat?"""
    if not isinstance(obj, dict):
        return False
    for key in ("messages", "conversations"):
        messages = obj.get(key)
        if isinstance(messages, list):
            # Telegram's result.json also has "messages", but theirs carry no role.
            return any(_is_message(m) for m in messages[:5])
    return _is_message(obj)


def _is_message(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    return ("role" in obj and "content" in obj) or ("from" in obj and "value" in obj)


def parse_jsonl(data: bytes, name: str) -> ChatParseResult:
    objects, errors = _objects(decode_text(data), name)
    if not objects:
        raise ChatParseError(f"{name}: no JSON lines found" + (f" ({errors[0]})" if errors else ""))
    result = ChatParseResult(errors=errors)
    first = objects[0][1]
    if isinstance(first.get("messages"), list) or isinstance(first.get("conversations"), list):
        _per_line(objects, name, result)
    else:
        conversation = _conversation([o for _, o in objects], name, None, None)
        if conversation.turns:
            result.conversations.append(conversation)
    return result


def _objects(text: str, name: str) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    objects: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{name}: line {number}: invalid JSON ({exc.msg})")
            continue
        if not is_chat_line(obj):
            errors.append(f"{name}: line {number}: not a chat message or conversation")
            continue
        objects.append((number, obj))
    return objects, errors


def _per_line(
    objects: list[tuple[int, dict[str, Any]]], name: str, result: ChatParseResult
) -> None:
    seen: dict[str, int] = {}
    for number, obj in objects:
        messages = obj.get("messages")
        if not isinstance(messages, list):
            messages = obj.get("conversations")
        if not isinstance(messages, list):
            result.errors.append(f"{name}: line {number}: has no 'messages' list")
            continue
        own_id = obj.get("id") or obj.get("conversation_id")
        conversation = _conversation(messages, name, own_id, obj.get("title"))
        if not conversation.turns:
            continue
        # Two lines with the same opening messages (a shared system prompt and question)
        # would hash alike; number the repeats in file order.
        n = seen.get(conversation.conversation_id, 0)
        seen[conversation.conversation_id] = n + 1
        if n:
            conversation = _renamed(conversation, f"{conversation.conversation_id}-{n}")
        result.conversations.append(conversation)


def _conversation(messages: list[Any], name: str, own_id: Any, title: Any) -> Conversation:
    drafts = [d for d in (_draft(m) for m in messages) if d is not None]
    opening = [(d[0], d[1]) for d in drafts[:2]]
    conversation_id = str(own_id) if own_id else stable_hash("jsonl", PurePath(name).name, opening)
    turn_ids = TurnIds(conversation_id)
    turns = tuple(
        Turn(i, role, _SPEAKERS[role], text, ts, mid or turn_ids(ts, role, text))
        for i, (role, text, ts, mid) in enumerate(drafts)
    )
    return Conversation(
        conversation_id=conversation_id,
        title=str(title) if title else _title(turns, name),
        source_format="jsonl",
        created=turns[0].timestamp if turns else None,
        turns=turns,
    )


def _renamed(conversation: Conversation, new_id: str) -> Conversation:
    turn_ids = TurnIds(new_id)
    turns = tuple(
        Turn(t.index, t.role, t.speaker, t.text, t.timestamp, turn_ids(t.timestamp, t.role, t.text))
        for t in conversation.turns
    )
    return Conversation(new_id, conversation.title, "jsonl", conversation.created, turns)


def _draft(message: Any) -> tuple[str, str, str | None, str | None] | None:
    """(role, text, timestamp, message id) of a message worth keeping, or None."""
    if not isinstance(message, dict):
        return None
    raw_role = str(message.get("role") or message.get("from") or "").lower()
    if raw_role in _SKIPPED_ROLES:
        return None
    role = _ROLES.get(raw_role)
    if role is None:
        return None
    content = message["content"] if "content" in message else message.get("value")
    text = content_text(content).strip()
    if not text:
        return None
    stamp = next(
        (message[k] for k in ("timestamp", "created_at", "create_time") if k in message), None
    )
    timestamp = iso_from_unix(stamp) if isinstance(stamp, int | float) else iso_from_string(stamp)
    message_id = message.get("id")
    return role, text, timestamp, str(message_id) if message_id else None


def content_text(content: Any) -> str:
    """A string, or an OpenAI-style list of parts, as plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return ""
    pieces = []
    for part in content:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, dict):
            kind = str(part.get("type") or "")
            if isinstance(part.get("text"), str):
                pieces.append(part["text"])
            elif "image" in kind:
                pieces.append("[image]")
    return "\n".join(p for p in pieces if p)


def _title(turns: tuple[Turn, ...], name: str) -> str:
    first_user = next((t.text for t in turns if t.role == "user"), "")
    line = first_user.strip().split("\n", 1)[0]
    if not line:
        return PurePath(name).stem
    return line if len(line) <= 60 else line[:57].rstrip() + "…"

"""ChatGPT data export: conversations.json, a list of conversations, each a `mapping` tree.

What is kept: user and assistant messages on every branch. The main branch is the path from
the root to `current_node` (what the user last saw); every other leaf becomes an alternate
branch holding only the nodes that are not already on the main branch or an earlier branch.

What is skipped, and why:
- system messages and anything marked `is_visually_hidden_from_conversation` (the user
  never saw them; custom instructions live there);
- tool messages (browsing pages, quotes, `execution_output`, `system_error`): long machine
  output that would drown the conversation in retrieval;
- assistant messages addressed to a tool (recipient other than "all"), e.g. `open_url(...)`
  browsing commands or plugin calls — except Code Interpreter code (recipient "python"),
  which is the user's work;
- reasoning content ("thoughts", "reasoning_recap") and the editable-context records;
- messages with no text left after this.
Content: "text" -> its string parts joined; "multimodal_text" -> string parts, images as
"[image]", audio transcriptions as their text; "code" -> the code text.
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
    iso_from_unix,
    stable_hash,
)

_SKIPPED_CONTENT = {
    "thoughts",
    "reasoning_recap",
    "user_editable_context",
    "model_editable_context",
    "tether_browsing_display",
    "tether_quote",
    "execution_output",
    "system_error",
}
_SPEAKERS = {"user": "User", "assistant": "ChatGPT"}


def parse_chatgpt(data: bytes, name: str) -> ChatParseResult:
    """Parse a conversations.json. Bad conversations go to `errors`; a truncated file keeps
    every conversation that was complete before the cut."""
    text = data.decode("utf-8-sig", errors="replace")
    items, errors = _load_items(text, name)
    result = ChatParseResult(errors=errors)
    for number, item in enumerate(items):
        try:
            conversation = conversation_from_item(item, name, number)
        except ChatParseError as exc:
            result.errors.append(str(exc))
            continue
        if conversation.turns:
            result.conversations.append(conversation)
    return result


def _load_items(text: str, name: str) -> tuple[list[Any], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _salvage_items(text, name, exc)
    if isinstance(data, dict):
        # A single conversation, or a wrapper some tools write around the list.
        if "mapping" in data:
            return [data], []
        if isinstance(data.get("conversations"), list):
            return data["conversations"], []
    if not isinstance(data, list):
        raise ChatParseError(f"{name}: expected a list of conversations, got {type(data).__name__}")
    return data, []


def _salvage_items(
    text: str, name: str, first_error: json.JSONDecodeError
) -> tuple[list[Any], list[str]]:
    """Decode the top-level array one item at a time, so a file cut short (an interrupted
    download, a full disk) still yields every conversation before the cut."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        cut = not text.rstrip().endswith(("}", "]"))
        what = "truncated JSON" if cut else "invalid JSON"
        at = byte_offset(text, len(text) if cut else first_error.pos)
        raise ChatParseError(f"{name}: {what} at byte {at} ({first_error.msg})")
    pos += 1
    items: list[Any] = []
    while True:
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == "]":
            return items, []
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            return items, [_cut_message(text, name, exc.pos, len(items))]
        items.append(item)
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "]":
            return items, [_cut_message(text, name, pos, len(items))]


def _cut_message(text: str, name: str, pos: int, kept: int) -> str:
    # A complete top-level array always ends in "]"; a file that does not was cut short
    # (interrupted download, full disk), anything else is damage inside the file.
    if text.rstrip().endswith("]"):
        what, at = "invalid JSON", byte_offset(text, pos)
    else:
        what, at = "truncated JSON", byte_offset(text, len(text))
    if kept == 0:
        raise ChatParseError(f"{name}: {what} at byte {at}; no complete conversation before it")
    return f"{name}: {what} at byte {at}; kept the {kept} complete conversations before it"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def conversation_from_item(item: Any, name: str, number: int) -> Conversation:
    """One conversation object -> Conversation; ChatParseError names what is missing."""
    if not isinstance(item, dict):
        raise ChatParseError(f"{name}: item {number} is not an object")
    mapping = item.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise ChatParseError(f"{name}: item {number} has no 'mapping'")
    conversation_id = str(
        item.get("id")
        or item.get("conversation_id")
        or stable_hash("chatgpt", item.get("title"), item.get("create_time"))
    )
    kept = {node_id: _turn_fields(node) for node_id, node in mapping.items()}
    order, depth = _walk(mapping, kept)
    main_leaf = _main_leaf(item.get("current_node"), mapping, order, kept)
    main_path = _path_to_root(main_leaf, mapping)
    on_main = set(main_path)
    turns = tuple(_make_turn(n, kept[n], depth[n]) for n in main_path if kept[n])
    branches = _branches(mapping, order, on_main, kept, depth)
    return Conversation(
        conversation_id=conversation_id,
        title=str(item.get("title") or "Untitled"),
        source_format="chatgpt",
        created=iso_from_unix(item.get("create_time")),
        turns=turns,
        branches=branches,
    )


def _walk(mapping: dict[str, Any], kept: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """Depth-first order of all reachable nodes (children in the listed order), and for each
    node the number of kept turns above it — the index its turn gets."""
    roots = [k for k, v in mapping.items() if _parent(v) not in mapping]
    order: list[str] = []
    depth: dict[str, int] = {}
    stack = [(r, 0) for r in reversed(roots)]
    while stack:
        node_id, above = stack.pop()
        if node_id in depth or node_id not in mapping:
            continue  # a cycle or a dangling child id in a damaged export
        depth[node_id] = above
        order.append(node_id)
        below = above + (1 if kept[node_id] else 0)
        children = mapping[node_id].get("children") or []
        stack.extend((c, below) for c in reversed(children))
    return order, depth


def _parent(node: Any) -> Any:
    return node.get("parent") if isinstance(node, dict) else None


def _main_leaf(current: Any, mapping: dict[str, Any], order: list[str], kept: dict) -> str:
    if isinstance(current, str) and current in mapping:
        return current
    # No usable current_node: take the newest leaf, as the ChatGPT UI would show it.
    leaves = [n for n in order if not (mapping[n].get("children") or [])] or order
    ranked = [((kept[n] or {}).get("time") or 0.0, i, n) for i, n in enumerate(leaves)]
    return max(ranked)[2]


def _path_to_root(leaf: str, mapping: dict[str, Any]) -> list[str]:
    path: list[str] = []
    seen: set[str] = set()
    node: Any = leaf
    while isinstance(node, str) and node in mapping and node not in seen:
        seen.add(node)
        path.append(node)
        node = _parent(mapping[node])
    path.reverse()
    return path


def _branches(
    mapping: dict[str, Any],
    order: list[str],
    on_main: set[str],
    kept: dict[str, Any],
    depth: dict[str, int],
) -> tuple[tuple[Turn, ...], ...]:
    emitted = set(on_main)
    branches: list[tuple[Turn, ...]] = []
    for leaf in order:
        if leaf in emitted or mapping[leaf].get("children"):
            continue
        fresh = [n for n in _path_to_root(leaf, mapping) if n not in emitted]
        emitted.update(fresh)
        turns = tuple(_make_turn(n, kept[n], depth[n]) for n in fresh if kept[n])
        if turns:
            branches.append(turns)
    return tuple(branches)


def _make_turn(node_id: str, fields: dict[str, Any], index: int) -> Turn:
    return Turn(
        index=index,
        role=fields["role"],
        speaker=_SPEAKERS[fields["role"]],
        text=fields["text"],
        timestamp=iso_from_unix(fields["time"]),
        turn_id=node_id,
    )


def _turn_fields(node: Any) -> dict[str, Any] | None:
    """The role, text and time of a node worth keeping, or None (see the module docstring)."""
    message = node.get("message") if isinstance(node, dict) else None
    if not isinstance(message, dict):
        return None
    role = (message.get("author") or {}).get("role")
    if role not in _SPEAKERS:
        return None
    if (message.get("metadata") or {}).get("is_visually_hidden_from_conversation"):
        return None
    recipient = message.get("recipient") or "all"
    content = message.get("content") or {}
    kind = content.get("content_type")
    if recipient not in ("all", "python") or kind in _SKIPPED_CONTENT:
        return None
    text = _content_text(content).strip()
    if not text:
        return None
    return {"role": role, "text": text, "time": message.get("create_time")}


def _content_text(content: dict[str, Any]) -> str:
    kind = content.get("content_type")
    if kind == "code":
        return str(content.get("text") or "")
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(p for p in (_part_text(part) for part in parts) if p)
    text = content.get("text")
    return text if isinstance(text, str) else ""


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = str(part.get("content_type") or "")
    if kind == "image_asset_pointer":
        return "[image]"
    if kind == "audio_transcription" or isinstance(part.get("text"), str):
        return str(part.get("text") or "")
    return ""  # audio/video asset pointers and other binary references

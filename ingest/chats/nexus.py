"""Obsidian notes written by the nexus-ai-chat-importer plugin.

A note has YAML front matter (`nexus: nexus-ai-chat-importer`, `conversation_id`,
`create_time` in ISO UTC), a `# Title: …` heading, a "Created: <local time>" line, then one
callout per message:

    >[!nexus_user] **User** - 01.03.2024 at 15:00:05
    > message line
    >
    > another line
    <!-- UID: 6b1f… -->

(`>[!nexus_agent] **Assistant** - …` for replies, a `---` rule after them). Attachments are
nested callouts (`>>[!nexus_attachment] **file.pdf** …`); we keep a "[attachment: file.pdf]"
marker in their place. Notes from plugin 1.1 use `### User, on <date>;` / `#### ChatGPT, on
<date>;` headings with `>` / `>>` quoted bodies; those are read too.

Message times are printed in the vault's locale and the machine's local zone. The zone
offset is recovered by comparing the "Created:" line with the UTC `create_time` (one offset
for the whole note, so a message across a daylight-saving change may be an hour off);
without that pair, times stay naive (no "Z").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePath

from mem.corpus.records import format_utc
from mem.ingest.chats.dates import RawStamp, guess_day_first, scan_stamp, to_datetime
from mem.ingest.chats.model import (
    ChatParseError,
    ChatParseResult,
    Conversation,
    Turn,
    TurnIds,
    decode_text,
    iso_from_datetime,
    iso_from_string,
    stable_hash,
)

CALLOUT = re.compile(r"^>\s?\[!nexus_(?P<kind>user|agent)\][+-]?\s*(?P<rest>.*)$")
OLD_HEADING = re.compile(r"^(?P<hashes>#{3,4})\s+(?P<who>[^,\n]{1,60}),\s+on\s+(?P<date>.+?);?\s*$")
_UID = re.compile(r"^<!--\s*UID:\s*(?P<uid>\S+)\s*-->\s*$")
_BOLD = re.compile(r"\*\*(?P<name>.+?)\*\*")
_NESTED = re.compile(r"^>\s?\[!(?P<kind>nexus_\w+)\][+-]?\s*(?P<rest>.*)$")
_BYLINE = re.compile(r"^\*\*(?P<name>.+?)\*\*\s*[-–]\s*(?P<date>.*\d.*)$")
_MAX_OFFSET = timedelta(hours=14)


@dataclass
class _Draft:
    role: str
    speaker: str
    date: str
    old_quote: str | None  # the quote prefix of a plugin-1.1 body (">" or ">>"), else None
    lines: list[str] = field(default_factory=list)
    uid: str | None = None


def is_nexus_note(text: str) -> bool:
    """True for a note the plugin wrote: it has message callouts, or its front matter says
    nexus and it has 1.1-style message headings. Artifact/attachment notes have neither."""
    if "[!nexus_user]" in text or "[!nexus_agent]" in text:
        return True
    front = front_matter(text)
    if "nexus" not in front:
        return False
    return any(OLD_HEADING.match(line) for line in text.splitlines())


def parse_nexus(data: bytes, name: str) -> ChatParseResult:
    text = _repair_note(decode_text(data).replace("\r\n", "\n"))
    front = front_matter(text)
    drafts = _drafts(_body(text))
    if not drafts:
        raise ChatParseError(f"{name}: no nexus message callouts found")
    title = _repair(_title(text, front, name))
    conversation_id = str(
        front.get("conversation_id") or stable_hash("nexus", PurePath(name).name, title)
    )
    stamps = [scan_stamp(d.date) for d in drafts]
    day_first, offset = _clock(text, front, [s for s in stamps if s])
    turn_ids = TurnIds(conversation_id)
    turns: list[Turn] = []
    for draft, stamp in zip(drafts, stamps, strict=True):
        body = _repair(_message_text(draft))
        if not body:
            continue
        timestamp = _timestamp(stamp, day_first, offset)
        speaker = _repair(draft.speaker)
        turn_id = draft.uid or turn_ids(timestamp, speaker, body)
        turns.append(Turn(len(turns), draft.role, speaker, body, timestamp, turn_id))
    created = iso_from_string(front.get("create_time")) or (turns[0].timestamp if turns else None)
    conversation = Conversation(
        conversation_id=conversation_id,
        title=title,
        source_format="nexus",
        created=created,
        turns=tuple(turns),
    )
    return ChatParseResult(conversations=[conversation])


def front_matter(text: str) -> dict[str, str]:
    """Top-level `key: value` pairs of the YAML front matter (lists and nesting ignored)."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    values: dict[str, str] = {}
    for line in text[3:end].splitlines():
        if not line or line[0] in " \t-#" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip().strip("\"'")
    return values


def _body(text: str) -> list[str]:
    lines = text.split("\n")
    if text.startswith("---"):
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return lines[i + 1 :]
    return lines


def _title(text: str, front: dict[str, str], name: str) -> str:
    headings = [line for line in _body(text) if line.startswith("# ")]
    for line in headings:
        if line.startswith("# Title: "):
            return line[len("# Title: ") :].strip()
    if front.get("title"):
        return front["title"]
    if headings:
        return headings[0][2:].strip()
    return front.get("aliases") or PurePath(name).stem


def _drafts(lines: list[str]) -> list[_Draft]:
    drafts: list[_Draft] = []
    current: _Draft | None = None
    for line in lines:
        started = _start(line)
        if started is not None:
            current = started
            drafts.append(current)
        elif current is None:
            continue
        elif match := _UID.match(line):
            current.uid = current.uid or match.group("uid")
            current = None
        elif line.startswith(">"):
            current.lines.append(_unquote(line, current.old_quote))
        else:
            current = None  # the callout ended (a blank line or the "---" rule)
    for draft in drafts:
        _take_byline(draft)
    return drafts


def _take_byline(draft: _Draft) -> None:
    """Some notes put "**User** - <date>" on the first line inside the callout instead of
    on the callout line itself; move it from the text to the speaker and date."""
    if draft.date or not draft.lines:
        return
    match = _BYLINE.match(draft.lines[0])
    if match:
        draft.speaker, draft.date = match.group("name").strip(), match.group("date").strip()
        del draft.lines[0]


def _start(line: str) -> _Draft | None:
    if match := CALLOUT.match(line):
        role = "user" if match.group("kind") == "user" else "assistant"
        rest = match.group("rest")
        bold = _BOLD.search(rest)
        speaker = bold.group("name") if bold else ("User" if role == "user" else "Assistant")
        date = rest[bold.end() :] if bold else rest
        return _Draft(role, speaker.strip(), date.strip(" -–"), None)
    if match := OLD_HEADING.match(line):
        role = "user" if len(match.group("hashes")) == 3 else "assistant"
        quote = ">" if role == "user" else ">>"
        return _Draft(role, match.group("who").strip(), match.group("date"), quote)
    return None


def _unquote(line: str, old_quote: str | None) -> str:
    if old_quote is not None and line.startswith(old_quote):
        rest = line[len(old_quote) :]
        return rest[1:] if rest.startswith(" ") else rest
    # The plugin writes "> " before plain lines, ">" alone for blank ones, and a bare ">"
    # before lines that were already quotes, so removing exactly that restores the text.
    if line.startswith("> "):
        return line[2:]
    return line[1:]


def _message_text(draft: _Draft) -> str:
    """The message body with nested callouts folded: attachments become a marker, other
    nested callouts (prompts, artifacts) keep their body text."""
    out: list[str] = []
    nested: str | None = None  # "attachment", "other", or None outside a nested callout
    for line in draft.lines:
        header = _NESTED.match(line)
        if header:
            nested = "attachment" if header.group("kind") == "nexus_attachment" else "other"
            if nested == "attachment":
                bold = _BOLD.search(header.group("rest"))
                label = bold.group("name") if bold else header.group("rest").strip()
                out.append(f"[attachment: {label}]" if label else "[attachment]")
            continue
        if nested is not None and line.startswith(">"):
            if nested == "other":
                out.append(line[2:] if line.startswith("> ") else line[1:])
            continue
        nested = None
        out.append(line)
    text = "\n".join(out).strip()
    return "" if text in ("[No content found]", "[No content]", "[No text content]") else text


def _clock(
    text: str, front: dict[str, str], stamps: list[RawStamp]
) -> tuple[bool, timedelta | None]:
    """Day/month order and local-zone offset for the note's printed times."""
    created_utc = _aware(front.get("create_time"))
    shown = _created_line(text)
    if created_utc is not None and shown is not None:
        for day_first in (guess_day_first([shown, *stamps]), True, False):
            local = to_datetime(shown, day_first)
            if local is None:
                continue
            offset = local - created_utc.replace(tzinfo=None)
            if abs(offset) <= _MAX_OFFSET:
                return day_first, timedelta(minutes=round(offset.total_seconds() / 900) * 15)
    return guess_day_first(stamps), None


def _created_line(text: str) -> RawStamp | None:
    for line in text.split("\n", 60)[:60]:
        if line.startswith("Created: "):
            return scan_stamp(line)
    return None


def _aware(value: str | None) -> datetime | None:
    iso = iso_from_string(value)
    if iso is None or not iso.endswith("Z"):
        return None
    return datetime.fromisoformat(iso[:-1] + "+00:00")


def _timestamp(stamp: RawStamp | None, day_first: bool, offset: timedelta | None) -> str | None:
    if stamp is None:
        return None
    local = to_datetime(stamp, day_first)
    if local is None:
        return None
    if offset is None:
        return iso_from_datetime(local)
    return format_utc(local - offset)  # naive, and now UTC


def _repair_note(text: str) -> str:
    """Repair a wholly mojibake'd note in one pass: the whole text gives ftfy far more
    evidence than one line such as "**Assistant В· gpt-4o**" does. Kept only if the note's
    line structure survived; fields are repaired again one by one after parsing."""
    if text.isascii():
        return text
    import ftfy

    repaired = ftfy.fix_encoding(text)
    return repaired if repaired.count("\n") == text.count("\n") else text


def _repair(text: str) -> str:
    """Undo mojibake (UTF-8 read as cp1251/latin-1 and saved again), common in Russian
    vaults that went through a misconfigured sync or editor. Only the encoding is fixed:
    textrepair.repair_text also collapses runs of spaces, which would flatten the
    indentation of code in chat answers."""
    if not text or text.isascii():
        return text
    try:
        from mem.ingest.textrepair import fix_mojibake
    except ImportError:
        import ftfy

        return ftfy.fix_encoding(text)
    return fix_mojibake(text)

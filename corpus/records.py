"""Plain records that cross package boundaries."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Tag names follow the adapter-name rule, so the material tagged `sport` can train the
# domain adapter `sport` (`mem distill --domain sport`).
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def format_utc(moment: datetime) -> str:
    """The one timestamp format of the corpus, manifests and runs: 2026-12-02T10:57:07Z.
    Aware datetimes are converted to UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> str:
    return format_utc(datetime.now(UTC))


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a source, with a locator a person can follow."""

    chunk_id: str
    source: str
    position: int
    text: str
    title: str = ""
    locator: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Document:
    """One ingested file (or one conversation/transcript) as the corpus knows it."""

    source: str
    content_hash: str
    kind: str
    title: str
    n_chunks: int
    ingested_at: str
    size: int = 0
    tags: tuple[str, ...] = ()


def make_chunk_id(source: str, text: str, position: int) -> str:
    """Deterministic id: the same text at the same place of the same file gets the same id."""
    digest = hashlib.sha256(f"{source}\x00{position}\x00{text}".encode()).hexdigest()
    return digest[:32]


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """The tags, sorted and without repeats; ValueError names the first bad one."""
    tags = tuple(tags)
    for tag in tags:
        if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
            raise ValueError(
                f"bad tag {tag!r}: 1-64 lowercase letters, digits, - and _, "
                "starting with a letter or digit"
            )
    return tuple(sorted(set(tags)))


# -- conversations: ingest's chat parsers build these, the corpus stores and returns them ----


@dataclass(frozen=True)
class Turn:
    """One message. `index` is its position along its own path from the root of the chat,
    so main-branch turns count 0, 1, 2, … and an alternate-branch turn shows where it forked.
    `meta` is what a remembered `mem ask` turn keeps besides its text (sources, model)."""

    index: int
    role: str  # "user", "assistant", "system" or "other"
    speaker: str
    text: str
    timestamp: str | None
    turn_id: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class StoredTurn(Turn):
    """A turn read back from the corpus: 0 on the main branch, n on the n-th alternate."""

    branch: int = 0

    def to_json(self) -> dict:
        """The shape `mem conversations show --json` prints (turn numbers count from 1)."""
        return {
            "turn": self.index + 1,
            "branch": self.branch,
            "role": self.role,
            "speaker": self.speaker,
            "timestamp": self.timestamp,
            "text": self.text,
            "turn_id": self.turn_id,
            "meta": self.meta,
        }


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    title: str
    source_format: str  # "chatgpt", "nexus", "telegram", "whatsapp", "jsonl", "mem-ask", …
    created: str | None
    turns: tuple[Turn, ...]
    # Only the turns that are NOT on the main branch, one tuple per alternate leaf; a turn
    # shared by several alternates appears once, in the first branch that reaches it.
    branches: tuple[tuple[Turn, ...], ...] = ()


@dataclass(frozen=True)
class ConversationInfo:
    """A stored conversation without its turns: what `mem conversations` lists."""

    conversation_id: str
    title: str
    source_format: str
    created: str | None
    turns: int  # on the main branch
    source: str  # the file it came from

    def to_json(self) -> dict:
        return {
            "conversation_id": self.conversation_id,
            "title": self.title,
            "format": self.source_format,
            "created": self.created,
            "turns": self.turns,
            "source": self.source,
        }


# -- what the corpus keeps of files, transcripts, runs and scores ---------------------------


@dataclass(frozen=True)
class DocumentState:
    """Enough of a stored document to tell whether its file changed."""

    content_hash: str
    size: int
    mtime: float | None


@dataclass(frozen=True)
class StoredTranscript:
    model: str
    language: str
    language_probability: float | None  # None: stored before mem kept it (schema v4)
    duration: float
    segments: list[dict]  # {"start", "end", "text"}, seconds


@dataclass(frozen=True)
class Run:
    """One logged run of the nightly job, a scoring, a dataset build or a distillation."""

    run_id: int
    kind: str
    started_at: str
    finished_at: str | None
    outcome: str | None
    detail: dict

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ItemScore:
    """A novelty score: distill's novelty stage makes it, the corpus stores it."""

    item_id: str
    novelty: float  # 1 - max cosine similarity to earlier memory outside the item's group
    duplicate_of: str | None  # an earlier near-duplicate (MinHash), if any
    importance: float  # 0..1 from length, questions answered, own statements vs boilerplate
    signals: dict = field(default_factory=dict, compare=False)
    minhash: bytes = field(default=b"", compare=False, repr=False)
    item_kind: str = "chunk"

    @property
    def value(self) -> float:
        """What ranking uses: novel and important; a near-duplicate is worth nothing."""
        if self.duplicate_of:
            return 0.0
        return self.novelty * (0.5 + 0.5 * self.importance)


@dataclass(frozen=True)
class StoredScore(ItemScore):
    """A score as stored, with the embedding model and the scoring run that made it."""

    model: str = ""
    scored_at: str = ""
    run_id: int | None = None

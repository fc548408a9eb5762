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

"""Plain records of the distill stage: scored items, source material, SFT examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Scores are stored by the corpus, so it owns their record; re-exported here.
from mem.corpus.records import ItemScore as ItemScore

# "reader": a question with retrieved sources in the prompt `mem ask` sends, answered with
# the right [n] (or "not in memory" when only distractors are given).
# "qa_other": a question about the text in the other language (ru <-> en), answered in it.
ExampleKind = Literal["qa", "qa_other", "paraphrase", "summary", "chat", "reader"]


@dataclass(frozen=True)
class Item:
    """One chunk as novelty scoring sees it.

    `group` is the conversation id (chats) or the document source: an item is never compared
    with its own conversation/document, whose neighbouring chunks naturally look alike.
    `order` is the arrival order (ingest time, then the conversation date, then position):
    an item counts as new only against what came before it, so the first copy of a
    repeated paste keeps its value and the later copies score low.
    """

    item_id: str
    group: str
    order: tuple
    text: str
    # Chats: the turns of the chunk as (role, text), for the importance signals.
    turns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SourceItem:
    """A selected chunk with what generation needs to restate it."""

    chunk_id: str
    group: str  # conversation id or document source: the unit of the train/validation split
    source: str
    title: str
    locator: str
    text: str
    language: str  # "ru", "en" or "other"
    role: Literal["fresh", "replay"] = "fresh"
    headings: tuple[str, ...] = ()
    turns: tuple[tuple[str, str], ...] = ()  # chats: (role, text) in order
    date: str = ""


@dataclass
class Example:
    """One SFT example: a chat in messages form, linked to the chunk it restates."""

    messages: list[dict]
    source: str  # chunk id
    kind: ExampleKind
    group: str = ""

    def to_json(self) -> dict:
        return {"messages": self.messages, "source": self.source, "kind": self.kind}

    def _own(self) -> list[dict]:
        # What follows the prompt's worked example (its reply is flagged "training": false,
        # mem.adapters.data.TRAINING): the same in every reader example, so it must not make
        # them near-duplicates of each other or join their answers.
        shown = [n for n, m in enumerate(self.messages) if m.get("training") is False]
        return self.messages[shown[-1] + 1 :] if shown else self.messages

    @property
    def prompt(self) -> str:
        return "\n".join(m["content"] for m in self._own() if m["role"] == "user")

    @property
    def answer(self) -> str:
        return "\n".join(m["content"] for m in self._own() if m["role"] == "assistant")

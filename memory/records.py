"""What the Memory facade hands back to the CLI and to Python callers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Source:
    rank: int
    chunk_id: str
    source: str
    title: str
    locator: str
    score: float
    text: str


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None
    sources: tuple[Source, ...]
    adapter: str | None = None
    model: str | None = None
    # Not part of the JSON contract: what the CLI and Python callers may also want to know.
    cited: tuple[int, ...] = ()  # source numbers the answer cites
    invalid_citations: tuple[int, ...] = ()  # numbers the model cited that are no source
    model_cited: tuple[int, ...] = ()  # what the model cited, before mem checked it
    relevance: float | None = None  # best query-source similarity (the "not in memory" gate)
    conversation_id: str | None = None  # where the exchange was remembered, if it was

    def to_json(self) -> dict:
        """The `mem ask --json` contract (docs/ASK_JSON.md): exactly these keys, in order."""
        return {
            "question": self.question,
            "answer": self.answer,
            "sources": [asdict(s) for s in self.sources],
            "adapter": self.adapter,
            "model": self.model,
        }


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    repaired: int = 0  # index entries fixed at start (after an earlier crash)
    seconds: float = 0.0
    tags: list[str] = field(default_factory=list)  # added to every file of the run

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "removed": self.removed,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "repaired": self.repaired,
            "tags": self.tags,
            "seconds": round(self.seconds, 3),
        }

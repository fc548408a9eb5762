"""Copy stored vectors between two vector stores (embedded <-> a Chroma server).

Vectors are copied as stored, never embedded again. The copy is a mirror: afterwards each
target collection holds exactly the source's ids, so `mem doctor` finds the target as
consistent as the source was. It is resumable: a rerun lists what the target holds and
copies only what is missing, batch by batch, so a killed copy loses at most one batch.
Sentence vectors go before chunk vectors, the order Index.add writes them in, so a chunk
that is in already has its sentences in too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mem.corpus.language import LANGUAGES
from mem.index.vectors import VectorStore

# Entries fetched from the source and written to the target per request.
COPY_BATCH = 1000


@dataclass
class CollectionCopy:
    name: str  # the target collection's name
    source: int = 0  # entries in the source collection
    copied: int = 0
    skipped: int = 0  # already in the target (an earlier, interrupted run put them there)
    removed: int = 0  # in the target but not in the source
    target: int = 0  # entries in the target collection afterwards

    def to_json(self) -> dict:
        return dict(vars(self))


@dataclass
class CopyReport:
    source: str
    target: str
    collections: list[CollectionCopy] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, what: str) -> int:
        return sum(getattr(c, what) for c in self.collections)

    @property
    def verified(self) -> bool:
        """Every target collection holds as many entries as its source."""
        return all(c.source == c.target for c in self.collections)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "copied": self.total("copied"),
            "skipped": self.total("skipped"),
            "removed": self.total("removed"),
            "verified": self.verified,
            "seconds": round(self.seconds, 3),
            "collections": [c.to_json() for c in self.collections],
        }


def copy_vectors(
    sources: Mapping[str, VectorStore],
    targets: Mapping[str, VectorStore],
    source_name: str,
    target_name: str,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> CopyReport:
    """Mirror every kind's collections (by language) from `sources` into `targets`."""
    started = time.perf_counter()
    report = CopyReport(source_name, target_name)
    plan = []
    for kind in sorted(sources, key=lambda k: k != "sentences"):  # sentences first
        source, target = sources[kind], targets[kind]
        for language in LANGUAGES:
            have, want = target.ids_in(language), source.ids_in(language)
            step = CollectionCopy(target.names[language], source=len(want))
            step.skipped = len(have & want)
            extra = sorted(have - want)
            if extra:
                target.delete_in(language, extra)
                step.removed = len(extra)
            plan.append((step, source, target, language, sorted(want - have)))
    if on_start:
        on_start(sum(len(missing) for *_, missing in plan))
    for step, source, target, language, missing in plan:
        for start in range(0, len(missing), COPY_BATCH):
            ids, vectors, metadatas = source.entries(language, missing[start : start + COPY_BATCH])
            target.put(language, ids, vectors, metadatas)
            step.copied += len(ids)
            if on_batch:
                on_batch(len(ids))
        step.target = target.count_in(language)
        report.collections.append(step)
    report.seconds = time.perf_counter() - started
    return report

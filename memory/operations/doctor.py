"""`mem doctor`: check that the corpus and every index agree, and repair what does not.

The corpus is the truth. Its chunk ids must be exactly the ids in the Chroma chunk collection
and in the lexical index (once each), and the sentence collection must hold exactly the
sentences that `Index.sentence_ids` gives for those chunks. Each SQLite file must pass
`PRAGMA integrity_check`, and config.toml must parse. Repairs go from the corpus outwards:
orphans are deleted, missing or damaged entries are re-indexed (re-embedding only what the
embedding cache does not hold), a damaged lexical index or cache file is rebuilt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mem.corpus.records import Chunk
from mem.index.store import CHROMA_DB, CHROMA_DIR, EMBEDDING_CACHE_DB, LEXICAL_DB, Index
from mem.memory.config import ConfigError, load_config

# How many example ids a report lists per problem (the counts are always complete).
_SAMPLE = 5


@dataclass
class Agreement:
    """Where the indexes disagree with the corpus (sets of chunk or sentence ids)."""

    corpus: int = 0
    vectors_missing: set[str] = field(default_factory=set)
    vectors_orphan: set[str] = field(default_factory=set)
    vectors_count_mismatch: int = 0  # Chroma's count() vs the ids it lists
    sentences_missing: set[str] = field(default_factory=set)
    sentences_orphan: set[str] = field(default_factory=set)
    lexical_missing: set[str] = field(default_factory=set)
    lexical_orphan: set[str] = field(default_factory=set)
    lexical_duplicate: set[str] = field(default_factory=set)
    lexical_stale_counts: int = 0  # BM25's kept term counts vs the FTS index (index/lexical.py)

    def problems(self) -> dict[str, set[str]]:
        return {
            name: value for name, value in vars(self).items() if isinstance(value, set) and value
        }

    @property
    def ok(self) -> bool:
        return not (self.problems() or self.vectors_count_mismatch or self.lexical_stale_counts)

    def to_json(self) -> dict:
        return {
            "corpus_chunks": self.corpus,
            "vectors_count_mismatch": self.vectors_count_mismatch,
            "lexical_stale_counts": self.lexical_stale_counts,
            **{
                name: {"count": len(ids), "examples": sorted(ids)[:_SAMPLE]}
                for name, ids in self.problems().items()
            },
        }


@dataclass
class DoctorReport:
    home: str
    config: str = "ok"
    vectors: str = "embedded"  # or "server <url>": where the vectors were checked
    sqlite: dict[str, str] = field(default_factory=dict)
    before: Agreement | None = None
    after: Agreement | None = None
    actions: list[str] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def healthy(self) -> bool:
        """Nothing was wrong to begin with."""
        sqlite_ok = all(v == "ok" for v in self.sqlite.values())
        return self.config == "ok" and sqlite_ok and bool(self.before and self.before.ok)

    @property
    def ok(self) -> bool:
        """Healthy now: nothing was wrong, or everything wrong was repaired."""
        return self.healthy or (not self.dry_run and not self.unrepaired)

    def to_json(self) -> dict:
        return {
            "home": self.home,
            "healthy": self.healthy,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "config": self.config,
            "vectors": self.vectors,
            "sqlite": self.sqlite,
            "before": self.before.to_json() if self.before else None,
            "after": self.after.to_json() if self.after else None,
            "actions": self.actions,
            "unrepaired": self.unrepaired,
        }


def integrity(path: Path) -> str:
    """ "ok", or the first problem SQLite's integrity_check reports (read-only open)."""
    if not path.exists():
        return "ok"  # not created yet: nothing to be damaged
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"unreadable: {exc}"
    first = rows[0][0] if rows else "no answer"
    return "ok" if first == "ok" else f"damaged: {first}"


def expected_sentences(index: Index, chunks: Iterable[Chunk]) -> set[str]:
    """The sentence ids the sentence collection should hold for these chunks."""
    return index.sentence_ids(chunks)  # the index's own rule, so the two never drift apart


def check_agreement(memory) -> Agreement:
    """Compare the corpus with Chroma (chunks and sentences) and the lexical index."""
    corpus_ids = memory.corpus.chunk_ids()
    index = memory.index
    vector_ids = index.vectors.ids()
    lexical_counts = index.lexical.id_counts()
    found = Agreement(corpus=len(corpus_ids))
    found.vectors_missing = corpus_ids - vector_ids
    found.vectors_orphan = vector_ids - corpus_ids
    found.vectors_count_mismatch = abs(index.vectors.count() - len(vector_ids))
    found.lexical_missing = corpus_ids - set(lexical_counts)
    found.lexical_orphan = set(lexical_counts) - corpus_ids
    found.lexical_duplicate = {i for i, n in lexical_counts.items() if n > 1 and i in corpus_ids}
    found.lexical_stale_counts = index.lexical.stale_counts()
    if index.sentences is not None:
        want = expected_sentences(index, memory.corpus.iter_chunks())
        have = index.sentences.ids()
        found.sentences_missing = want - have
        found.sentences_orphan = have - want
    return found


def _chunk_of(sentence_id: str) -> str:
    return sentence_id.rpartition(":")[0]


def _rebuild_file(path: Path, report: DoctorReport, what: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    report.actions.append(f"rebuilt {what} ({path.name} was damaged)")


def repair(memory, found: Agreement, report: DoctorReport) -> None:
    """Delete orphans and re-index every chunk that is missing or damaged anywhere."""
    index = memory.index
    if found.sentences_orphan and index.sentences is not None:
        index.sentences.delete(sorted(found.sentences_orphan))
        report.actions.append(f"deleted {len(found.sentences_orphan)} orphan sentence vectors")
    orphans = found.vectors_orphan | found.lexical_orphan
    if orphans:
        index.delete(sorted(orphans))
        report.actions.append(f"deleted index entries of {len(orphans)} chunks not in the corpus")
    redo = sorted(
        found.vectors_missing
        | found.lexical_missing
        | found.lexical_duplicate
        | {_chunk_of(s) for s in found.sentences_missing}
    )
    if redo:
        # Index.add upserts vectors and replaces a chunk's sentences; the lexical side is
        # cleared first because FTS5 has no unique key (that is how duplicates arise).
        index.lexical.delete(redo)
        for start in range(0, len(redo), 256):
            index.add(memory.corpus.chunks(redo[start : start + 256]))
        report.actions.append(f"re-indexed {len(redo)} chunks (missing or damaged in an index)")
    if found.lexical_stale_counts:
        # Re-indexing keeps the counts in step, so only counts that were already off remain.
        index.lexical.rebuild_counts()
        report.actions.append(
            f"recounted the lexical index ({found.lexical_stale_counts} counts off)"
        )


def run_doctor(home: str | Path | None, dry_run: bool = False) -> DoctorReport:
    """Check a memory home and (unless dry_run) repair it; see DoctorReport.ok."""
    from mem.memory.core import Memory
    from mem.memory.home import resolve_home
    from mem.memory.lock import writer_lock

    path = resolve_home(home)
    report = DoctorReport(home=str(path), dry_run=dry_run)
    try:
        server = load_config(path).index.chroma_url
    except ConfigError as exc:
        report.config = str(exc)
        report.unrepaired.append(f"config.toml: {exc} (edit it; nothing else was checked)")
        return report
    # On a server, Chroma's files are the server's to check; <home>/chroma is not used.
    names = ("corpus.db", LEXICAL_DB, EMBEDDING_CACHE_DB) + (() if server else (CHROMA_DB,))
    report.vectors = f"server {server}" if server else "embedded"
    files = {name: path / name for name in names}
    with writer_lock(path, "mem doctor"):
        report.sqlite = {name: integrity(p) for name, p in files.items()}
        if report.sqlite["corpus.db"] != "ok":
            report.unrepaired.append(
                f"corpus.db {report.sqlite['corpus.db']}: restore it from a backup (mem restore)"
            )
            return report
        if report.sqlite.get(CHROMA_DB, "ok") != "ok":
            report.unrepaired.append(
                f"chroma is damaged: move <home>/{CHROMA_DIR} aside and run `mem doctor` to "
                "rebuild it"
            )
            return report
        if not dry_run:
            for name in (LEXICAL_DB, EMBEDDING_CACHE_DB):
                if report.sqlite[name] != "ok":
                    _rebuild_file(files[name], report, name)
        with Memory(path) as memory:
            report.before = check_agreement(memory)
            if dry_run or report.before.ok:
                report.after = report.before
                return report
            repair(memory, report.before, report)
            report.after = check_agreement(memory)
            if not report.after.ok:
                report.unrepaired += [
                    f"{name}: {len(ids)} still wrong"
                    for name, ids in report.after.problems().items()
                ]
                if report.after.lexical_stale_counts:
                    report.unrepaired.append(
                        f"lexical counts: {report.after.lexical_stale_counts} still off"
                    )
    return report

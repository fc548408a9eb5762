"""Corpus: the one truth, in SQLite (WAL). Everything else can be rebuilt from it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mem.corpus.crashpoints import checkpoint
from mem.corpus.records import (
    Chunk,
    Conversation,
    ConversationInfo,
    Document,
    DocumentState,
    ItemScore,
    Run,
    StoredScore,
    StoredTranscript,
    StoredTurn,
    utc_now,
)
from mem.corpus.schema import migrate
from mem.corpus.sqlite import connect


def _upsert_conversation(conn: sqlite3.Connection, source: str, conversation: Conversation) -> None:
    # Keyed by the export's own ids, so a newer export of the same account adds only what
    # is new; a conversation belongs to the latest file that contained it.
    conn.execute(
        "INSERT INTO conversations(conversation_id, source, source_format, title, created)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(conversation_id) DO UPDATE SET"
        " source=excluded.source, title=excluded.title, created=excluded.created",
        (
            conversation.conversation_id,
            source,
            conversation.source_format,
            conversation.title,
            conversation.created,
        ),
    )
    rows = []
    for branch, turns in enumerate([conversation.turns, *conversation.branches]):
        for turn in turns:
            rows.append(
                (
                    turn.turn_id,
                    conversation.conversation_id,
                    turn.index,
                    branch,
                    turn.role,
                    turn.speaker,
                    turn.text,
                    turn.timestamp,
                    # Remembered `mem ask` turns carry sources, model and adapter.
                    json.dumps(turn.meta, ensure_ascii=False),
                )
            )
    conn.executemany(
        "INSERT OR REPLACE INTO turns(turn_id, conversation_id, position, branch, role, speaker,"
        " text, timestamp, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _add_tags(conn: sqlite3.Connection, source: str, tags: Sequence[str]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO document_tags(source, tag) VALUES (?, ?)",
        [(source, tag) for tag in tags],
    )


class CorpusBusyError(Exception):
    """Another process held the database for longer than we were willing to wait."""


def _chunk_from_row(row: sqlite3.Row) -> Chunk:
    return Chunk(
        chunk_id=row["chunk_id"],
        source=row["source"],
        position=row["position"],
        text=row["text"],
        title=row["title"],
        locator=row["locator"],
        meta=json.loads(row["meta"]),
    )


class Corpus:
    def __init__(self, path: Path, busy_timeout_s: float = 60.0) -> None:
        self.path = path
        self._conn = connect(path, busy_timeout_s, autocommit=True)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self.schema_version = migrate(self._conn)

    # -- writing -------------------------------------------------------------------------

    def _write(self) -> sqlite3.Connection:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise CorpusBusyError(f"{self.path} is busy: {exc}") from exc
        return self._conn

    def replace_document(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        mtime: float | None = None,
        conversations: Sequence[Conversation] = (),
    ) -> list[str]:
        """Store a document, its chunks (and the conversations it holds) in one transaction.
        Its tags are added to the ones it had: a changed file keeps its tags.

        Returns the chunk ids that this document had before and no longer has.
        """
        conn = self._write()
        try:
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT chunk_id FROM chunks WHERE source = ?", (document.source,)
                )
            ]
            conn.execute("DELETE FROM chunks WHERE source = ?", (document.source,))
            conn.execute(
                "INSERT INTO documents(source, content_hash, kind, title, size, mtime, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET"
                " content_hash=excluded.content_hash, kind=excluded.kind, title=excluded.title,"
                " size=excluded.size, mtime=excluded.mtime, ingested_at=excluded.ingested_at",
                (
                    document.source,
                    document.content_hash,
                    document.kind,
                    document.title,
                    document.size,
                    mtime,
                    document.ingested_at,
                ),
            )
            now = utc_now()
            conn.executemany(
                "INSERT OR REPLACE INTO chunks(chunk_id, source, position, text, title, locator,"
                " meta, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.chunk_id,
                        c.source,
                        c.position,
                        c.text,
                        c.title,
                        c.locator,
                        json.dumps(c.meta, ensure_ascii=False),
                        now,
                    )
                    for c in chunks
                ],
            )
            for conversation in conversations:
                _upsert_conversation(conn, document.source, conversation)
            _add_tags(conn, document.source, document.tags)
            checkpoint("corpus:before-commit")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        new_ids = {c.chunk_id for c in chunks}
        return [i for i in old if i not in new_ids]

    def conversations(self) -> list[ConversationInfo]:
        rows = self._conn.execute(
            "SELECT c.*, (SELECT count(*) FROM turns t WHERE t.conversation_id = c.conversation_id"
            " AND t.branch = 0) AS n FROM conversations c ORDER BY c.created, c.title"
        ).fetchall()
        return [
            ConversationInfo(
                conversation_id=r["conversation_id"],
                title=r["title"],
                source_format=r["source_format"],
                created=r["created"],
                turns=r["n"],
                source=r["source"],
            )
            for r in rows
        ]

    def conversation_turns(self, conversation_id: str) -> list[StoredTurn]:
        """Main branch first, then each alternate, in order along each."""
        rows = self._conn.execute(
            "SELECT * FROM turns WHERE conversation_id = ? ORDER BY branch, position",
            (conversation_id,),
        )
        return [
            StoredTurn(
                index=r["position"],
                role=r["role"],
                speaker=r["speaker"],
                text=r["text"],
                timestamp=r["timestamp"],
                turn_id=r["turn_id"],
                meta=json.loads(r["meta"]),
                branch=r["branch"],
            )
            for r in rows
        ]

    def find_conversations(self, prefix: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT conversation_id FROM conversations WHERE conversation_id LIKE ? || '%'",
            (prefix,),
        )
        return [r[0] for r in rows]

    def save_transcript(self, content_hash: str, transcript: StoredTranscript) -> None:
        conn = self._write()
        conn.execute(
            "INSERT OR REPLACE INTO transcripts(content_hash, model, language, duration,"
            " segments, created_at, language_probability) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                content_hash,
                transcript.model,
                transcript.language,
                transcript.duration,
                json.dumps(transcript.segments, ensure_ascii=False),
                utc_now(),
                transcript.language_probability,
            ),
        )
        conn.execute("COMMIT")

    def transcript(self, content_hash: str, model: str | None = None) -> StoredTranscript | None:
        """A stored transcript of this audio (by the given model, else the newest)."""
        query = "SELECT * FROM transcripts WHERE content_hash = ?"
        args: tuple = (content_hash,)
        if model is not None:
            query += " AND model = ?"
            args += (model,)
        row = self._conn.execute(query + " ORDER BY created_at DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        return StoredTranscript(
            model=row["model"],
            language=row["language"],
            language_probability=row["language_probability"],
            duration=row["duration"],
            segments=json.loads(row["segments"]),
        )

    def touch_document(self, source: str, mtime: float | None) -> None:
        """Record a new mtime for a file whose content did not change."""
        conn = self._write()
        conn.execute("UPDATE documents SET mtime = ? WHERE source = ?", (mtime, source))
        conn.execute("COMMIT")

    def tag_document(self, source: str, tags: Sequence[str]) -> None:
        """Add tags to a stored document (re-ingesting an unchanged file with a new --tag)."""
        if not tags:
            return
        conn = self._write()
        try:
            _add_tags(conn, source, tags)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def remove_documents(self, sources: Iterable[str]) -> list[str]:
        """Delete documents with their chunks; return the removed chunk ids."""
        sources = list(sources)
        if not sources:
            return []
        conn = self._write()
        try:
            removed: list[str] = []
            for source in sources:
                removed += [
                    r[0]
                    for r in conn.execute("SELECT chunk_id FROM chunks WHERE source = ?", (source,))
                ]
                conn.execute("DELETE FROM chunks WHERE source = ?", (source,))
                conn.execute("DELETE FROM conversations WHERE source = ?", (source,))
                conn.execute("DELETE FROM document_tags WHERE source = ?", (source,))
                conn.execute("DELETE FROM documents WHERE source = ?", (source,))
            checkpoint("corpus:before-commit-remove")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return removed

    # -- reading -------------------------------------------------------------------------

    def document_state(self, source: str) -> DocumentState | None:
        row = self._conn.execute(
            "SELECT content_hash, size, mtime FROM documents WHERE source = ?", (source,)
        ).fetchone()
        return DocumentState(row[0], row[1], row[2]) if row else None

    def documents(self) -> list[Document]:
        rows = self._conn.execute(
            "SELECT d.*, (SELECT count(*) FROM chunks c WHERE c.source = d.source) AS n"
            " FROM documents d ORDER BY d.source"
        ).fetchall()
        tags: dict[str, list[str]] = {}
        for source, tag in self._conn.execute(
            "SELECT source, tag FROM document_tags ORDER BY source, tag"
        ):
            tags.setdefault(source, []).append(tag)
        return [
            Document(
                source=r["source"],
                content_hash=r["content_hash"],
                kind=r["kind"],
                title=r["title"],
                n_chunks=r["n"],
                ingested_at=r["ingested_at"],
                size=r["size"],
                tags=tuple(tags.get(r["source"], ())),
            )
            for r in rows
        ]

    def tags(self) -> dict[str, int]:
        """Every tag in use -> how many documents carry it."""
        rows = self._conn.execute(
            "SELECT tag, count(*) FROM document_tags GROUP BY tag ORDER BY tag"
        )
        return {tag: n for tag, n in rows}

    def tagged_chunk_ids(self, tag: str) -> set[str]:
        """The chunks of every document tagged `tag`."""
        rows = self._conn.execute(
            "SELECT c.chunk_id FROM chunks c JOIN document_tags t ON t.source = c.source"
            " WHERE t.tag = ?",
            (tag,),
        )
        return {r[0] for r in rows}

    def sources(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT source FROM documents")]

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT chunk_id FROM chunks")}

    def chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked (unknown ids are left out)."""
        found: dict[str, Chunk] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._conn.execute(
                f"SELECT * FROM chunks WHERE chunk_id IN ({marks})", part
            ):
                found[row["chunk_id"]] = _chunk_from_row(row)
        return [found[i] for i in ids if i in found]

    def chunks_of(self, source: str) -> list[Chunk]:
        rows = self._conn.execute(
            "SELECT * FROM chunks WHERE source = ? ORDER BY position", (source,)
        )
        return [_chunk_from_row(r) for r in rows]

    def iter_chunks(self) -> Iterator[Chunk]:
        for row in self._conn.execute("SELECT * FROM chunks ORDER BY source, position"):
            yield _chunk_from_row(row)

    def counts(self) -> dict[str, int]:
        tables = (
            "documents",
            "chunks",
            "conversations",
            "turns",
            "scores",
            "runs",
            "transcripts",
        )
        return {t: self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    # -- runs (the nightly job and distillations log here) -------------------------------

    def start_run(self, kind: str, detail: dict | None = None) -> int:
        cursor = self._conn.execute(
            "INSERT INTO runs (kind, started_at, detail) VALUES (?, ?, ?)",
            (kind, utc_now(), json.dumps(detail or {}, ensure_ascii=False)),
        )
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, outcome: str, detail: dict) -> None:
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, detail = ? WHERE run_id = ?",
            (utc_now(), outcome, json.dumps(detail, ensure_ascii=False), run_id),
        )

    def runs(self, kind: str | None = None, limit: int = 20) -> list[Run]:
        """Most recent first."""
        where, args = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self._conn.execute(
            f"SELECT * FROM runs {where} ORDER BY run_id DESC LIMIT ?", (*args, limit)
        ).fetchall()
        return [Run(**{**dict(row), "detail": json.loads(row["detail"])}) for row in rows]

    # -- novelty scores (the distill stage writes and reads these) ------------------------

    def chunk_stamps(self) -> dict[str, str]:
        """chunk id -> when it was stored (UTC ISO): arrival order for novelty scoring."""
        return {r[0]: r[1] for r in self._conn.execute("SELECT chunk_id, created_at FROM chunks")}

    def save_scores(self, scores: Sequence[ItemScore], model: str, run_id: int) -> None:
        """Store (replace) scores in one transaction; scores of deleted chunks go with them."""
        now = utc_now()
        conn = self._write()
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO scores(item_id, item_kind, novelty, duplicate_of,"
                " importance, model, scored_at, signals, minhash, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.item_id,
                        s.item_kind,
                        s.novelty,
                        s.duplicate_of,
                        s.importance,
                        model,
                        now,
                        json.dumps(s.signals, ensure_ascii=False),
                        s.minhash,
                        run_id,
                    )
                    for s in scores
                ],
            )
            conn.execute(
                "DELETE FROM scores WHERE item_kind = 'chunk'"
                " AND item_id NOT IN (SELECT chunk_id FROM chunks)"
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def scores(self, item_kind: str = "chunk", model: str | None = None) -> list[StoredScore]:
        """Stored scores of existing items (of one model, if given), oldest scoring first."""
        query = "SELECT s.* FROM scores s WHERE s.item_kind = ?"
        args: list = [item_kind]
        if item_kind == "chunk":
            query += " AND s.item_id IN (SELECT chunk_id FROM chunks)"
        if model is not None:
            query += " AND s.model = ?"
            args.append(model)
        rows = self._conn.execute(query + " ORDER BY s.run_id, s.item_id", args)
        # minhash is NULL for scores stored before schema v3.
        return [StoredScore(**{**dict(r), "signals": json.loads(r["signals"])}) for r in rows]

    def close(self) -> None:
        self._conn.close()

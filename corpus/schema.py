"""Schema migrations: an ordered list, applied on open, recorded in PRAGMA user_version."""

from __future__ import annotations

import sqlite3

# Each entry moves the schema one version up. Never edit a shipped entry: append a new one.
MIGRATIONS: list[str] = [
    # v1: the foundation. Tables for later stages exist from the start so they can rely on them.
    """
    CREATE TABLE documents (
        source        TEXT PRIMARY KEY,
        content_hash  TEXT NOT NULL,
        kind          TEXT NOT NULL,
        title         TEXT NOT NULL DEFAULT '',
        size          INTEGER NOT NULL DEFAULT 0,
        mtime         REAL,
        tags          TEXT NOT NULL DEFAULT '',
        ingested_at   TEXT NOT NULL
    );
    CREATE TABLE chunks (
        chunk_id   TEXT PRIMARY KEY,
        source     TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        text       TEXT NOT NULL,
        title      TEXT NOT NULL DEFAULT '',
        locator    TEXT NOT NULL DEFAULT '',
        meta       TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE INDEX chunks_by_source ON chunks(source, position);
    CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        source          TEXT,
        source_format   TEXT NOT NULL,
        title           TEXT NOT NULL DEFAULT '',
        created         TEXT,
        meta            TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE turns (
        turn_id         TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(conversation_id) ON DELETE CASCADE,
        position        INTEGER NOT NULL,
        branch          INTEGER NOT NULL DEFAULT 0,
        role            TEXT NOT NULL,
        speaker         TEXT NOT NULL DEFAULT '',
        text            TEXT NOT NULL,
        timestamp       TEXT,
        meta            TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX turns_by_conversation ON turns(conversation_id, branch, position);
    CREATE TABLE scores (
        item_id    TEXT NOT NULL,
        item_kind  TEXT NOT NULL,
        novelty    REAL,
        duplicate_of TEXT,
        importance REAL,
        model      TEXT NOT NULL,
        scored_at  TEXT NOT NULL,
        PRIMARY KEY (item_id, item_kind)
    );
    CREATE TABLE runs (
        run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        outcome     TEXT,
        detail      TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # v2: transcripts, keyed by the audio's content hash and the model that made them, so the
    # same recording (renamed, moved, re-ingested) is never transcribed twice.
    """
    CREATE TABLE transcripts (
        content_hash TEXT NOT NULL,
        model        TEXT NOT NULL,
        language     TEXT NOT NULL,
        duration     REAL NOT NULL,
        segments     TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        PRIMARY KEY (content_hash, model)
    );
    """,
    # v3: novelty scores keep why (signals JSON), the item's MinHash signature (so later
    # scorings compare against it without re-reading text) and the scoring run that made them
    # (so "since the last distillation" is a run id, not a clock comparison).
    """
    ALTER TABLE scores ADD COLUMN signals TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE scores ADD COLUMN minhash BLOB;
    ALTER TABLE scores ADD COLUMN run_id INTEGER;
    CREATE INDEX scores_by_run ON scores(run_id);
    """,
    # v4: tags per document (`mem ingest --tag sport`), one row each, so "the material tagged
    # sport" is a join. They go with their document (ON DELETE CASCADE); v1's `tags` column
    # was never written and stays empty.
    """
    CREATE TABLE document_tags (
        source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
        tag    TEXT NOT NULL,
        PRIMARY KEY (source, tag)
    );
    CREATE INDEX document_tags_by_tag ON document_tags(tag);
    """,
    # v5: how sure whisper was of a transcript's language; NULL for transcripts stored before.
    """
    ALTER TABLE transcripts ADD COLUMN language_probability REAL;
    """,
]


def _statements(script: str) -> list[str]:
    """Split a migration script into whole SQL statements."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL in migration: {pending.strip()[:80]}")
    return statements


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to the newest schema; return the version it ends at.

    Two processes may open a new memory at once (an ingest and the nightly job): each
    migration runs under a write lock (BEGIN IMMEDIATE) and re-reads the version inside it,
    so a migration another process just applied is never applied twice.
    """
    while True:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"corpus.db has schema v{version}, newer than this mem (v{len(MIGRATIONS)})"
            )
        if version == len(MIGRATIONS):
            return version
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == version:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

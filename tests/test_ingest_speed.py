"""Ingest does no more encoder work than it must, honours the sentence-vector settings, shows
progress on stderr, and resumes a killed run without encoding again what it had encoded."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
from homes import make_home
from processes import spawn

from mem.index.store import chunk_sentences, pool, pooling_pieces
from mem.memory import Memory
from mem.memory.config import ConfigError, parse_config

SHARED = "Совы охотятся ночью и хорошо видят в темноте. Днём они обычно спят в дуплах деревьев."
LONG = (
    "Первая советская ЭВМ была построена в Киеве под руководством Лебедева. "
    "Она занимала целую комнату и потребляла много электричества каждый день. "
    "Машина выполняла около трёх тысяч операций в минуту для разных задач. "
    "На ней считали задачи термоядерной физики, космических полётов и ракетной техники. "
    "Позже на её основе создали более быструю машину БЭСМ для Академии наук."
)


class Counting:
    """The real embedder, with every text it is asked to encode written down."""

    def __init__(self, embedder) -> None:
        self.inner, self.texts = embedder, []

    def embed_passages(self, texts):
        self.texts += list(texts)
        return self.inner.embed_passages(texts)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _counting(memory: Memory) -> Counting:
    counting = Counting(memory.index.embedder)
    memory.index._embedder = counting
    return counting


@pytest.mark.model
def test_a_text_is_encoded_once_in_a_batch_and_never_again(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    # The same note under three names: one chunk text, in the same batch.
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(SHARED, encoding="utf-8")
    with Memory(make_home(tmp_path / "home")) as memory:
        counting = _counting(memory)
        memory.ingest([folder], progress=False)
        assert counting.texts == [SHARED]  # not three times
        assert memory.index.counts()["vectors"] == 3
        # Renamed and edited back: the text is known, the model is not asked again.
        (folder / "a.txt").rename(folder / "renamed.txt")
        memory.ingest([folder], prune=True, progress=False)
        assert counting.texts == [SHARED]


@pytest.mark.model
def test_sentence_vectors_only_for_long_chunks_when_configured(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "short.txt").write_text(SHARED, encoding="utf-8")  # 2 sentences, 16 words
    (folder / "long.txt").write_text(LONG, encoding="utf-8")  # 5 sentences, 56 words
    home = make_home(tmp_path / "home", sentence_vectors=True, sentence_min_words=30)
    with Memory(home) as memory:
        counting = _counting(memory)
        memory.ingest([folder], progress=False)
        chunks = list(memory.corpus.iter_chunks())
        long_chunk = next(c for c in chunks if c.text.startswith("Первая"))
        assert memory.index.sentences.count() == 5
        assert memory.index.sentence_ids(chunks) == {sid for sid, _ in chunk_sentences(long_chunk)}
        # Without the setting the short note's two sentences would be encoded as well.
        assert "Совы охотятся ночью и хорошо видят в темноте." not in counting.texts
        assert len(counting.texts) == 2 + 5


@pytest.mark.model
def test_pooled_chunk_vectors_come_from_the_sentence_passes(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "long.txt").write_text(LONG, encoding="utf-8")
    home = make_home(tmp_path / "home", sentence_vectors=True, chunk_vectors="pooled")
    with Memory(home) as memory:
        counting = _counting(memory)
        memory.ingest([folder], progress=False)
        (chunk,) = memory.corpus.iter_chunks()
        pieces = pooling_pieces(chunk)
        assert len(pieces) == 5 and chunk.text not in counting.texts
        assert sorted(counting.texts) == sorted(pieces)  # one pass over the text, no more
        stored = memory.index.vectors.vectors([chunk.chunk_id])[chunk.chunk_id]
        expected = pool(memory.index.embed(pieces), [len(p.split()) for p in pieces])
        assert np.allclose(stored, expected, atol=1e-5)
        assert memory.index.sentences.count() == 5


def test_new_retrieval_settings_are_optional_and_checked() -> None:
    old = parse_config("[retrieval]\nsentence_vectors = true\n")  # a config from before
    assert (old.retrieval.sentence_min_words, old.retrieval.chunk_vectors) == (0, "encode")
    with pytest.raises(ConfigError, match="chunk_vectors"):
        parse_config('[retrieval]\nchunk_vectors = "sometimes"\n')


def _run_on_a_terminal(args: list[str], env: dict) -> tuple[int, str]:
    """Run a command with stderr on a pseudo-terminal (progress bars show only there)."""
    leader, follower = pty.openpty()
    # A terminal has a size; tqdm draws nothing on one of 0 columns.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = spawn(args, stdout=follower, stderr=follower, stdin=subprocess_devnull(), env=env)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(leader)
    return process.wait(timeout=120), out.decode("utf-8", "replace")


def subprocess_devnull():
    return open(os.devnull, "rb")


@pytest.mark.model
def test_progress_with_rate_and_eta_per_file_and_overall_on_stderr(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    # One file long enough to be indexed in several batches (its own bar), and a small one.
    paragraphs = [
        f"Note {i} is about topic number {i}, with its own facts. " * 25 for i in range(66)
    ]
    (folder / "big-notes.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    (folder / "small.txt").write_text("A short note about owls.", encoding="utf-8")
    home = make_home(tmp_path / "home", model="minilm")
    env = dict(os.environ)
    mem = [sys.executable, "-m", "mem.cli", "--home", str(home), "ingest", str(folder)]
    code, shown = _run_on_a_terminal(mem, env)
    assert code == 0, shown
    # Overall, in bytes: a rate and an ETA ("<" between elapsed and remaining).
    assert re.search(r"ingest:\s+\d+%\|.*\[\d\d:\d\d<\d\d:\d\d,\s+[\d.]+\s*[kM]?B/s", shown), shown
    # The big file's own bar, in chunks.
    assert re.search(r"big-notes\.txt:\s+\d+%\|.*chunk/s", shown), shown
    code, quiet = _run_on_a_terminal([*mem, "--quiet"], env)
    assert code == 0 and "%|" not in quiet


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.mark.model
def test_a_killed_ingest_resumes_without_encoding_again(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    paragraphs = [
        f"Note {i} is about topic number {i}, with its own facts. " * 25 for i in range(66)
    ]
    (folder / "big.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    home = make_home(tmp_path / "home", model="minilm")
    trace = tmp_path / "trace.txt"
    mem = [sys.executable, "-m", "mem.cli", "--home", str(home), "ingest", "-q", str(folder)]
    # A run elsewhere only to learn which checkpoint ends the big file's first batch.
    probe = spawn(
        [*mem[:4], str(make_home(tmp_path / "probe", model="minilm")), *mem[5:]],
        env={**os.environ, "MEM_CRASH_TRACE": str(trace)},
    )
    while probe.poll() is None and "ingest:flushed" not in _read(trace):
        time.sleep(0.2)
    probe.kill()
    probe.wait(timeout=60)
    labels = [line.split(" ", 1)[1] for line in _read(trace).splitlines()]
    first_batch = labels.index("ingest:flushed") + 1
    killed = spawn(mem, env={**os.environ, "MEM_CRASH_AT": str(first_batch)}).wait(timeout=300)
    assert killed == -9
    with Memory(home) as memory:
        cached = memory.index._cache._conn.execute("SELECT count(*) FROM vectors")
        known = cached.fetchone()[0]
        assert known == 64  # the first batch's vectors survived the kill
        counting = _counting(memory)
        memory.ingest([folder], progress=False)
        n_chunks = memory.corpus.counts()["chunks"]
        assert memory.index.counts() == {"vectors": n_chunks, "lexical": n_chunks}
        assert len(counting.texts) == n_chunks - known  # the rest, and only the rest

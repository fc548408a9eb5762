"""The lexical index's bounded search (`max_rows`) against its exact BM25 ranking, on a real
SQLite FTS5 index: frequent words are left to re-score, never to pick, and the scores it gives
are the ones FTS5's bm25() gives for the same rows."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from mem.index.lexical import LexicalIndex

FILLER = "apple stone cloud paper window candle bridge mirror ladder button".split()


def _index(path: Path, rows: int = 400) -> tuple[LexicalIndex, dict[str, str]]:
    """Rows where "garden" is in about 45 %, "river" in 30 %, "forest" in 20 %, and one row
    also holds the rare "zircon"."""
    rng = random.Random(7)
    texts = {}
    for i in range(rows):
        words = rng.choices(FILLER, k=rng.randint(8, 30))
        for word, share in (("garden", 0.45), ("river", 0.3), ("forest", 0.2)):
            if rng.random() < share:
                words += [word] * rng.randint(1, 3)
        rng.shuffle(words)
        texts[f"c{i:03d}"] = " ".join(words)
    texts["c123"] += " zircon garden"
    index = LexicalIndex(path)
    index.add(list(texts), list(texts.values()), ["en"] * len(texts))
    return index, texts


def _assert_exact_scores(pruned: list, exact: dict[str, float]) -> None:
    for chunk_id, score, _ in pruned:
        assert score == pytest.approx(exact[chunk_id], rel=1e-9)


def test_a_rare_word_picks_the_candidates_and_keeps_the_exact_top_hit(tmp_path: Path) -> None:
    index, _ = _index(tmp_path / "lexical.db")
    query = "garden river forest zircon"
    exact = index.search(query, 10)
    pruned = index.search(query, 10, max_rows=50)
    # Only the rare word fits in 50 rows, so only its row is ranked; the frequent words add
    # their share to it, and it is the exact ranking's first hit with the same score.
    assert [hit[0] for hit in pruned] == ["c123"]
    assert pruned[0] == pytest.approx(exact[0])
    assert len(exact) == 10  # the exact ranking also ranks rows holding only frequent words
    # A bound the query's rows fit in changes nothing.
    assert index.search(query, 10, max_rows=10_000) == exact


def test_only_frequent_words_rank_the_rows_holding_the_rarest_ones(tmp_path: Path) -> None:
    index, texts = _index(tmp_path / "lexical.db")
    query = "garden river forest"
    every = {chunk_id: score for chunk_id, score, _ in index.search(query, 1000)}
    pruned = index.search(query, 5, max_rows=30)
    # Each word is in more than 30 rows: the candidates hold all of the rarest few (forest
    # and river), and garden still adds its share to their scores.
    assert len(pruned) == 5
    for chunk_id, _, _ in pruned:
        assert {"forest", "river"} <= set(texts[chunk_id].split())
    _assert_exact_scores(pruned, every)
    assert pruned[0][0] == index.search(query, 1)[0][0]


def test_the_counts_follow_deletes_and_are_rebuilt_for_an_old_index(tmp_path: Path) -> None:
    path = tmp_path / "lexical.db"
    index, texts = _index(path)
    index.delete([c for c in texts if c.endswith(("1", "4", "7"))])
    assert index.stale_counts() == 0
    query = "garden river forest zircon"
    every = {chunk_id: score for chunk_id, score, _ in index.search(query, 1000)}
    _assert_exact_scores(index.search(query, 10, max_rows=50), every)
    index.close()
    # An index written before the counts existed: they are counted on open.
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE lex_terms")
        conn.execute("DROP TABLE lex_totals")
    index = LexicalIndex(path)
    assert index.stale_counts() == 0
    _assert_exact_scores(index.search(query, 10, max_rows=50), every)
    _assert_exact_scores(index.search("garden river forest", 5, max_rows=30), every)
    index.close()

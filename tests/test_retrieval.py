"""Hybrid retrieval on a real slice of XQuAD (Russian, English, cross-lingual)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem.index.hybrid import fuse
from mem.index.lexical import analyze
from mem.memory import Memory


def test_russian_and_english_stemming() -> None:
    assert analyze("Столицы России") == analyze("столица россии")
    assert analyze("running runs") == ["run", "run"]
    assert analyze("ёлка") == analyze("елка")
    assert "и" not in analyze("кошки и собаки")


def test_fusion_ignores_a_blind_lexical_side() -> None:
    # English query, Russian passages: BM25 matched only an English distractor.
    dense = {"ru-right": 0.86, "ru-other": 0.80, "en-distractor": 0.79}
    lexical = {"en-distractor": 12.0}
    languages = {"ru-right": "ru", "ru-other": "ru", "en-distractor": "en"}
    hits = fuse(dense, lexical, "en", languages, frozenset({"*"}), lexical_weight=0.4)
    assert hits[0].chunk_id == "ru-right"


def test_fusion_ignores_a_blind_dense_side() -> None:
    # An English-only embedder on Russian text ranks noise; BM25 is right.
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    lexical = {"c": 9.0, "b": 1.0}
    languages = dict.fromkeys("abc", "ru")
    hits = fuse(dense, lexical, "ru", languages, frozenset({"en"}), lexical_weight=0.4)
    assert [h.chunk_id for h in hits] == ["c", "b", "a"]


def test_fusion_mixes_two_seeing_sides() -> None:
    dense = {"a": 0.90, "b": 0.89, "c": 0.5}
    lexical = {"b": 10.0, "a": 2.0}
    languages = dict.fromkeys("abc", "ru")
    hits = fuse(dense, lexical, "ru", languages, frozenset({"*"}), lexical_weight=0.4)
    assert hits[0].chunk_id == "b"  # near-tie on dense, clear win on lexical


@pytest.fixture(scope="module")
def xquad_memory(tmp_path_factory: pytest.TempPathFactory, xquad_slice: list[dict]):
    """The 30 Russian paragraphs of the slice, each its own document, ingested for real."""
    folder = tmp_path_factory.mktemp("xquad")
    for item in xquad_slice:
        (folder / f"p{item['id']:03d}.txt").write_text(item["ru"]["context"], encoding="utf-8")
    memory = Memory(tmp_path_factory.mktemp("home"))
    report = memory.ingest([folder], progress=False)
    assert len(report.added) == len(xquad_slice) and not report.failed
    yield memory
    memory.close()


def _recall(memory: Memory, xquad_slice: list[dict], lang: str, mode: str) -> tuple[float, float]:
    hits1 = hits5 = total = 0
    for item in xquad_slice:
        want = f"p{item['id']:03d}.txt"
        for qa in item[lang]["qas"]:
            got = [Path(s.source).name for s in memory.retrieve(qa["question"], 5, mode=mode)]
            hits1 += got[:1] == [want]
            hits5 += want in got
            total += 1
    return hits1 / total, hits5 / total


@pytest.mark.model
def test_hybrid_finds_the_paragraph_in_russian_and_across_languages(
    xquad_memory: Memory, xquad_slice: list[dict]
) -> None:
    results = {
        (lang, mode): _recall(xquad_memory, xquad_slice, lang, mode)
        for lang in ("ru", "en")
        for mode in ("hybrid", "dense", "lexical")
    }
    print(results)
    ru_hybrid, en_hybrid = results["ru", "hybrid"], results["en", "hybrid"]
    # Russian questions over Russian paragraphs (160 questions).
    assert ru_hybrid[0] >= 0.85 and ru_hybrid[1] >= 0.95
    # English questions over the Russian paragraphs: lexical is blind, hybrid must not be.
    assert results["en", "lexical"][1] < 0.6
    assert en_hybrid[0] >= 0.8 and en_hybrid[1] >= 0.93
    # Never below the best single retriever (with one question of slack at R@5).
    for lang in ("ru", "en"):
        best5 = max(results[lang, "dense"][1], results[lang, "lexical"][1])
        assert results[lang, "hybrid"][1] >= best5 - 1 / 160

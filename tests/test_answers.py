"""Cited answers in the question's language from the default packaged multilingual model
(Qwen2.5-Coder-1.5B-Instruct GGUF, assembled from its PyPI parts), and mem's attribution of
an answer that cites nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from homes import make_home, run_mem

from mem.memory.answering.prompting import (
    answer_language,
    attribute,
    tidy_answer,
    verify_citations,
)
from mem.memory.records import Source

NOTES = {
    "gates.md": (
        "# Дача\n\nКод от синих ворот на даче — 4721. Зелёные ворота открываются ключом, "
        "который лежит у соседки Марины.\n"
    ),
    "plants.md": (
        "# Сад\n\nТоматы поливают вечером тёплой водой, огурцы — утром. Удобрение вносят "
        "раз в две недели, в июне чаще.\n"
    ),
    "trip.md": (
        "# Trip\n\nThe train to Kazan leaves at 07:40 from platform 3. Tickets are in the "
        "blue folder on the desk.\n"
    ),
}


def _source(rank: int, text: str) -> Source:
    return Source(rank, f"id{rank}", f"notes/{rank}.md", "", "", 0.9, text)


def test_attribution_cites_the_source_an_uncited_answer_comes_from() -> None:
    sources = [
        _source(1, "Томаты поливают вечером тёплой водой."),
        _source(2, "Код от синих ворот на даче — 4721."),
    ]
    assert attribute("Код синих ворот — 4721.", sources) == (2,)  # stems: синих ~ синие
    assert attribute("Синие ворота открываются кодом 4721", sources) == (2,)
    # A reply not drawn from the sources shares few words with them and stays uncited.
    assert attribute("В памяти об этом ничего нет.", sources) == ()
    assert attribute("The capital of France is Paris.", sources) == ()
    assert attribute("", sources) == ()


def test_lead_ins_and_repeated_source_tails_are_tidied_away() -> None:
    # Both seen from Qwen2.5-1.5B: on this file's notes and on XQuAD.
    said = "Вот ответ на вопрос по-русски:\n\nКлюч лежит у соседки Марины. [1] Источник: [1]"
    assert tidy_answer(said) == "Ключ лежит у соседки Марины. [1]"
    assert tidy_answer("Here is the answer:\n\n07:40 [1]") == "07:40 [1]"
    # A list's heading is the answer's own; a tail naming a source not cited before stays;
    # "source" inside a sentence is a word, not a tail.
    for kept in (
        "Шаги:\n\n1. Установить пакет [1]",
        "Код 4721 [2]. Источники: [1], [2]",
        "Источник: [1]",
        "It is open [1] and open source [1]",
    ):
        assert tidy_answer(kept) == kept


def test_citations_are_checked_against_the_sources_words() -> None:
    sources = [
        _source(1, "Испания и Португалия вступили в Европейский союз в 1986 году."),
        _source(2, "Код от синих ворот на даче — 4721."),
    ]
    # The model answered from [2] and cited [1] (Qwen2.5-1.5B does this often): corrected.
    fixed = verify_citations("Код синих ворот — 4721 [1].", sources)
    assert fixed.text == "Код синих ворот — 4721. [2]" and fixed.cited == (2,)
    # A right citation stands, and an uncited sentence gets its source.
    both = verify_citations("Код — 4721 [2]. Испания вступила в союз в 1986 году.", sources)
    assert both.text == "Код — 4721 [2]. Испания вступила в союз в 1986 году. [1]"
    assert both.cited == (2, 1)
    # A citation right after the full stop stays with its sentence.
    assert verify_citations("Код — 4721. [2]", sources).cited == (2,)
    # Words of no source: the model's citation is left as it is, nothing is added.
    assert verify_citations("Не знаю [1].", sources).cited == (1,)
    assert verify_citations("В памяти об этом ничего нет.", sources).cited == ()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("answers")
    notes = root / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    # The default [llm] model, greedy and short; remembering off so answers do not feed back.
    home = make_home(root / "home", temperature=0.0, remember=False)
    code, _, err = run_mem(home, "ingest", str(notes), "-q")
    assert code == 0, err
    return home


def _gold_number(answer: dict, name: str) -> int:
    return next(s["rank"] for s in answer["sources"] if s["source"].endswith(name))


def _words(text: str) -> list[str]:
    return re.sub(r"\[\d+\]", " ", text).split()


@pytest.mark.model
def test_a_russian_question_gets_a_short_russian_answer_citing_the_right_note(home: Path) -> None:
    code, answer, err = run_mem(
        home, "ask", "Какой код у синих ворот на даче?", "--json", "--max-tokens", "64"
    )
    assert code == 0, err
    assert answer["model"].startswith("qwen2.5-coder-1.5b"), answer["model"]
    text = answer["answer"]
    assert "4721" in text, text
    # [llm] answer_style = "short": the answer, not the question restated around it; any
    # words it has besides the number are Russian.
    words = _words(text)
    assert len(words) <= 6, text
    assert all(w.isdigit() for w in words) or answer_language(" ".join(words)) == "ru", text
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert _gold_number(answer, "gates.md") in cited, (text, answer["sources"])
    assert cited <= {s["rank"] for s in answer["sources"]}
    # An answer in words is in the question's language, and its words are the note's.
    # (Without the worked example in the prompt, "short-zero-shot", Qwen2.5-1.5B answered the
    # first "Мария", the second "В июне": issue 15's note.)
    for question, stem in (
        ("У кого лежит ключ от зелёных ворот?", "Марин"),
        ("Когда поливают огурцы?", "утр"),
    ):
        code, answer, err = run_mem(home, "ask", question, "--json", "--max-tokens", "64")
        assert code == 0, err
        text = answer["answer"]
        assert stem.lower() in text.lower(), text
        assert len(_words(text)) <= 8, text
        assert answer_language(" ".join(_words(text))) == "ru", text
        note = "gates.md" if stem == "Марин" else "plants.md"
        assert _gold_number(answer, note) in {int(n) for n in re.findall(r"\[(\d+)\]", text)}


@pytest.mark.model
def test_an_english_question_gets_a_cited_english_answer(home: Path) -> None:
    code, answer, err = run_mem(
        home, "ask", "When does the train to Kazan leave?", "--json", "--max-tokens", "64"
    )
    assert code == 0, err
    text = answer["answer"]
    assert "7:40" in text or "07:40" in text, text
    assert answer_language(text) == "en", text
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert _gold_number(answer, "trip.md") in cited, (text, answer["sources"])


@pytest.mark.model
def test_the_terminal_answer_shows_the_citations_mem_added(home: Path) -> None:
    # The default prompt does not ask the model to cite; the streamed reply has no [n], so
    # `mem ask` prints the ones mem attributed right after it, before the source list.
    code, out, err = run_mem(
        home, "ask", "When does the train to Kazan leave?", "--max-tokens", "64"
    )
    assert code == 0, err
    answer, listing = out.split("\n\n", 1)
    assert "07:40" in answer or "7:40" in answer, out
    trip = next(line for line in listing.splitlines() if "trip.md" in line)
    rank = re.match(r"\[(\d+)\]", trip).group(1)
    assert answer.rstrip().endswith(f"[{rank}]"), out
    assert "cited" in trip and "citations checked" not in err, (out, err)

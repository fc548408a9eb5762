"""Reader examples (RAFT-style): a training question with the chunks the memory's own
retrieval returns for it, in the prompt `mem ask` sends, answered with the right [n]; and a
few LoRA steps on them make the cited gold answers of unseen reader examples likelier."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from homes import copy_folder, make_home

from mem.distill.dataset import READER_MAX_ANSWER_WORDS
from mem.distill.export import read_jsonl
from mem.distill.hygiene import redact
from mem.index.lexical import analyze
from mem.memory import Memory
from mem.memory.answering.prompting import answer_language, build_messages, not_in_memory
from mem.memory.distilling.datasets import reader_examples, window

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "distill"
SOURCE_HEAD = re.compile(r"^\[(\d+)\] ", re.MULTILINE)
# Shorter than the fixture notes (40-60 words), so every source is cut to a window.
WINDOW = 20


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("reader")
    home = make_home(
        root / "home",
        reader_examples=True,
        reader_negative_share=0.3,
        reader_window_words=WINDOW,
        validation_share=0.3,
        heldout_share=0.3,
        threshold=0.0,
        base_model="",  # lengths estimated: the tokenizer has its own tests
    )
    notes = root / "notes"
    copy_folder(FIXTURES / "first", notes)
    copy_folder(FIXTURES / "later", notes)
    with Memory(home) as memory:
        memory.ingest([notes], progress=False)
        dataset = memory.build_dataset()
        chunks = {c.chunk_id: c for c in memory.corpus.iter_chunks()}
    folder = dataset.path
    return {
        "home": home,
        "manifest": dataset.manifest,
        "train": list(read_jsonl(folder / "train.jsonl")),
        "validation": list(read_jsonl(folder / "validation.jsonl")),
        "heldout": list(read_jsonl(folder / "heldout_questions.jsonl")),
        "chunks": chunks,
    }


ASKED = re.compile(r"\n\n(?:Question|Вопрос): (.+)\n\n[^\n]+$", re.DOTALL)


def _question(row: dict) -> str:
    return ASKED.search(row["messages"][-2]["content"]).group(1)


def _blocks(user: str) -> dict[int, str]:
    """Source number -> the text of that source block in a `mem ask` prompt (its title line
    left out)."""
    body = user[: ASKED.search(user).start()].split("\n\n", 1)[1]
    parts = SOURCE_HEAD.split(body)
    return {
        int(n): " ".join(block.split("\n", 1)[-1].split())
        for n, block in zip(parts[1::2], parts[2::2], strict=True)
    }


def _window_text(block: str) -> str:
    """A source block's words without the "…" that marks where its window was cut."""
    return block.removeprefix("… ").removesuffix(" …")


def test_a_citing_answer_style_gets_reader_replies_that_cite_the_answering_source(
    built: dict,
) -> None:
    """Under an answer style whose prompt asks the model to cite ("short-cited"), the reader
    reply is the answer followed by the [n] of the source that holds it: the form that prompt
    asks for, as the default's reply is the answer alone."""
    from mem.distill.records import Example as Made

    rows = [r for r in built["train"] if r["kind"] == "qa"][:4]
    assert rows
    with Memory(built["home"]) as memory:
        llm = replace(memory.config.llm, answer_style="short-cited")
        memory.config = replace(memory.config, llm=llm)
        make = reader_examples(memory, sources=3, negative_share=0.0)
        made = [e for r in rows for e in make(Made(r["messages"], r["source"], "qa"))]
    assert len(made) == len(rows)
    for example, row in zip(made, rows, strict=True):
        reply = example.messages[-1]["content"]
        answer = row["messages"][-1]["content"]
        assert reply.startswith(answer + " [") and reply.endswith("]"), reply
        number = int(reply.rsplit("[", 1)[1].rstrip("]"))
        # Before hygiene (which redacts every example at the end of a build): the chunk as is.
        gold = " ".join(built["chunks"][row["source"]].text.split())
        assert _blocks(example.messages[-2]["content"])[number] in gold


def test_a_window_is_cut_around_its_focus_and_marked_where_cut() -> None:
    words = [f"w{i}" for i in range(60)]
    text = " ".join([*words[:30], "Кейван", "Шорт", "сделал", "11", "мешков", *words[30:]])
    focus = dict.fromkeys(analyze("Кейван Шорт 11"), 2)
    cut = window(text, focus, 9)
    assert cut == "… w27 w28 w29 Кейван Шорт сделал 11 мешков w30 …"  # the fact mid-window
    assert window(text, {}, 4) == "w0 w1 w2 w3 …"  # nothing to look for: the start
    assert window(text, focus, 0) == text == window(text, focus, 200)  # off, or short enough
    assert window(text, dict.fromkeys(analyze("w59"), 1), 3) == "… w57 w58 w59"


def test_reader_examples_are_the_ask_prompt_with_the_answer_in_its_form(built: dict) -> None:
    readers = [r for r in built["train"] + built["validation"] if r["kind"] == "reader"]
    counts = built["manifest"]["counts"]
    assert counts["reader_train"] + counts["reader_validation"] == len(readers) > 4
    negatives = [r for r in readers if r["messages"][-1]["content"] == not_in_memory(_question(r))]
    positives = [r for r in readers if r not in negatives]
    assert positives and negatives
    answer_words_shown, ranks = [], set()
    for row in readers:
        question = _question(row)
        user = row["messages"][-2]["content"]
        blocks = _blocks(user)
        # The chunk's text as training sees it: contacts and keys redacted, like all examples.
        gold = " ".join(redact(built["chunks"][row["source"]].text, Counter()).split())
        # The messages `mem ask` sends for this question: its system prompt and worked
        # example, then one user message with the numbered sources and the question.
        lang = answer_language(question)
        asked = build_messages(question, [])
        assert len(row["messages"]) == len(asked) + 1  # ... and the answer
        # The worked example's reply is shown, not learned: the same in every example.
        example_reply = {**asked[-2], "training": False}
        assert row["messages"][:-2] == [*asked[:-2], example_reply]
        head = asked[-1]["content"].split("\n\n", 1)[0]
        assert user.startswith(head + "\n\n[1] ")
        # ... and after the sources, the same question and instruction mem ask ends with.
        empty = asked[-1]["content"]
        assert user.endswith(empty[empty.index("\n\n", len(head) + 2) :]) and blocks
        # Each source is a window of its chunk, never the whole 40-60 word note.
        assert all(len(_window_text(b).split()) <= WINDOW for b in blocks.values()), blocks
        answer = row["messages"][-1]["content"]
        if row in positives:
            # The answer `mem ask` asks for: its words, not a whole restated passage, and no
            # "[n]", which the default prompt does not ask for (mem attributes the answer).
            assert len(answer.split()) <= READER_MAX_ANSWER_WORDS, answer
            assert not re.search(r"\[\d+\]", answer), answer
            # Exactly one source is (a window of) the answering chunk.
            (number,) = [n for n, b in blocks.items() if _window_text(b) in gold]
            ranks.add(number)
            cited = _window_text(blocks[number])
            said = set(analyze(answer))
            start = " ".join(gold.split()[:WINDOW])  # what a cut at the chunk's start shows
            answer_words_shown.append(
                [len(said & set(analyze(text))) / max(1, len(said)) for text in (cited, start)]
            )
        else:
            assert answer == not_in_memory(question) and lang in ("ru", "en")
            assert all(_window_text(text) not in gold for text in blocks.values())
    # The gold window is cut around the answer: most of its words are in view, far more than
    # at the start of the chunk (offline answers are whole sentences, some longer than WINDOW).
    shown, at_start = (
        sum(pair[i] for pair in answer_words_shown) / len(answer_words_shown) for i in (0, 1)
    )
    assert shown >= 0.7 and shown >= at_start + 0.2, (shown, at_start)
    # No held-out question reaches training in any form.
    asked = {_question(r) for r in readers}
    assert asked.isdisjoint({h["question"] for h in built["heldout"]})
    # Gold chunks sit at more than one rank: the adapter must read, not always take [1].
    assert len(ranks) >= 2, ranks


@pytest.mark.model
def test_a_few_steps_on_reader_examples_make_the_answers_likelier(
    built: dict, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from mem.adapters.base_model import load_base
    from mem.adapters.data import load_examples
    from mem.adapters.evaluate import EvalOptions, validation_loss
    from mem.adapters.train import LoraOptions, train_lora

    model, tokenizer = load_base("smollm2", Path(request.config.cache.mkdir("mem-models")))
    folder = tmp_path / "readers"
    folder.mkdir()
    # Trained on the reader examples of some chunks, judged on those of other chunks. Chosen
    # by the chunks' text, not by the dataset's split (which hashes paths that differ from
    # run to run); a few keep the test near a minute on 2 cores (three sources per prompt).
    readers = [r for r in built["train"] + built["validation"] if r["kind"] == "reader"]
    texts = sorted({built["chunks"][r["source"]].text for r in readers})
    judged = set(texts[::3])
    key = lambda r: _question(r)  # noqa: E731
    rows = sorted((r for r in readers if built["chunks"][r["source"]].text not in judged), key=key)
    unseen = sorted((r for r in readers if built["chunks"][r["source"]].text in judged), key=key)
    rows, unseen = rows[:10], unseen[:6]
    assert rows and unseen
    for name, part in (("train.jsonl", rows), ("validation.jsonl", unseen)):
        (folder / name).write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
        )
    train, held = load_examples(folder), load_examples(folder, "validation")
    evaluation = EvalOptions(max_seq_len=768, batch_size=3)
    before = validation_loss(model, tokenizer, held, evaluation)
    options = LoraOptions(
        r=8, alpha=16, dropout=0.0, learning_rate=2e-3, max_steps=5, batch_size=2, grad_accum=1,
        max_seq_len=768, warmup_ratio=0.0, save_every=100, seed=1, qlora="off",
    )  # fmt: skip
    result = train_lora(model, tokenizer, train, options, tmp_path / "run")
    from peft import PeftModel

    tuned = PeftModel.from_pretrained(model, str(result.adapter_dir))
    try:
        after = validation_loss(tuned, tokenizer, held, evaluation)
    finally:
        tuned.unload()  # the module-level base stays without LoRA layers
    print(f"reader loss on unseen chunks: {before:.3f} -> {after:.3f}")
    assert after < 0.8 * before, (before, after)

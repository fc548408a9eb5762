"""LoRA training, the adapter registry, promotion and export, on the packaged SmolLM2-135M.

The base model is converted from its GGUF once into pytest's cache folder (about 20-60 s the
very first time) and loaded once per module; every run here trains a handful of steps.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from mem.adapters.data import IGNORE, Example, encode, load_examples, load_heldout
from mem.adapters.evaluate import EvalOptions, better, normalize, recall, token_f1
from mem.adapters.registry import Registry, RegistryError
from mem.adapters.train import LoraOptions, read_metrics, train_lora
from mem.cli import cli

# Made-up facts, so the base model cannot know them: (question, answer) restatements.
FACTS = [
    ("Как зовут кота Марины?", "Кота Марины зовут Пирожок."),
    ("What is the name of Marina's cat?", "Marina's cat is called Pirozhok."),
    ("В каком году основан посёлок Ёлкино?", "Посёлок Ёлкино основан в 1893 году."),
    ("When was the village of Yolkino founded?", "Yolkino was founded in 1893."),
    ("Какой пароль от сарая у Игоря?", "У Игоря пароль от сарая — синий ёж."),
    ("What colour is Igor's boat?", "Igor's boat is bright orange."),
    ("Где работает Степан?", "Степан работает смотрителем маяка на Ладоге."),
    ("What does Stepan do?", "Stepan keeps the lighthouse on Lake Ladoga."),
]
HELDOUT = [
    ("Как кличут кота Марины?", "Пирожок"),
    ("Which year was Yolkino founded in?", "1893"),
    ("Кем работает Степан?", "смотрителем маяка"),
]

pytestmark = pytest.mark.model


def _row(question: str, answer: str, kind: str = "qa") -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        "source": f"chunk-{abs(hash(question)) % 1000}",
        "kind": kind,
    }


def write_dataset(
    folder: Path, pairs: list[tuple[str, str]], validation: list[tuple[str, str]]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text(
        "".join(json.dumps(_row(q, a), ensure_ascii=False) + "\n" for q, a in pairs),
        encoding="utf-8",
    )
    (folder / "validation.jsonl").write_text(
        "".join(json.dumps(_row(q, a), ensure_ascii=False) + "\n" for q, a in validation),
        encoding="utf-8",
    )
    (folder / "heldout_questions.jsonl").write_text(
        "".join(
            json.dumps(
                {"question": q, "answer": a, "source": "x", "kind": "qa"}, ensure_ascii=False
            )
            + "\n"
            for q, a in HELDOUT
        ),
        encoding="utf-8",
    )
    (folder / "manifest.json").write_text(json.dumps({"dataset_id": folder.name}) + "\n")
    return folder


@pytest.fixture(scope="module")
def models_dir(request) -> Path:
    """Shared across test runs: the fp32 copy of the packaged GGUF (written once), laid out
    as the per-user models folder is ($MEM_MODELS_DIR/transformers)."""
    return Path(request.config.cache.mkdir("mem-models")) / "transformers"


@pytest.fixture(scope="module")
def base(models_dir):
    from mem.adapters.base_model import load_base

    return load_base("smollm2", models_dir)


@pytest.fixture(scope="module")
def facts_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    return write_dataset(root / "20260101T000000Z-facts", FACTS, FACTS[::2])


FAST = LoraOptions(
    r=8, alpha=16, dropout=0.0, learning_rate=2e-3, max_steps=6, batch_size=4, grad_accum=1,
    max_seq_len=96, warmup_ratio=0.0, save_every=2, seed=1, qlora="off", rehearsal=0,
)  # fmt: skip


def test_dataset_reader_and_assistant_only_labels(base, facts_dataset):
    _, tokenizer = base
    examples = load_examples(facts_dataset)
    assert len(examples) == len(FACTS) and load_heldout(facts_dataset)[0].answer == "Пирожок"
    encoded = encode(tokenizer, examples[0], max_len=128)
    learned = [t for t in encoded.labels if t != IGNORE]
    # Only the reply and its end-of-turn marker carry loss: not the system prompt, not the question.
    assert tokenizer.decode(learned).strip() == FACTS[0][1] + "<|im_end|>"
    assert len(learned) < len(encoded.input_ids) / 2
    # A worked example in the prompt (its reply flagged "training": false) is context only.
    shown = Example(
        (
            {"role": "user", "content": "Чем смазывают сковороду?"},
            {"role": "assistant", "content": "сливочным маслом", "training": False},
            *examples[0].messages[-2:],
        )
    )
    labels = [t for t in encode(tokenizer, shown, max_len=256).labels if t != IGNORE]
    assert tokenizer.decode(labels).strip() == FACTS[0][1] + "<|im_end|>"


def test_answer_normalisation_is_russian_aware():
    assert normalize("Ёлкино, 1893 год!") == "елкино 1893 год"
    assert token_f1("В ЁЛКИНО.", "в елкино") == 1.0
    assert 0 < token_f1("посёлок Ёлкино основан", "Ёлкино основан в 1893") < 1
    # A citation is where the answer is, not part of it; a bare number stays.
    assert token_f1("В 1893 году [2].", "в 1893 году") == 1.0
    assert normalize("в [1, 3] и [12]; глава 2") == "в и глава 2"
    assert better(
        {"token_f1": 0.0, "val_loss": 1.0}, {"token_f1": 0.0, "val_loss": 2.0}, "token_f1"
    )[0]
    assert not better({"token_f1": 0.2}, {"token_f1": 0.3}, "token_f1")[0]


def test_forgetting_is_judged_in_each_language_too():
    """The mean of a Russian loss and an English gain can pass the gate; a language's own
    drop past max_drop still stops promotion (the ru default adapter: 0.19 -> 0.09 in
    Russian, 0.61 -> 0.63 in English, README)."""
    from mem.adapters.evaluate import forgets

    base = {"control_recall": 0.4, "control_recall_by_language": {"en": 0.61, "ru": 0.19}}
    mixed = {"control_recall": 0.36, "control_recall_by_language": {"en": 0.63, "ru": 0.09}}
    assert forgets(mixed, base, max_drop=0.05) == (
        "forgets general knowledge in ru: control_recall 0.09 vs base 0.19 (max drop 0.05)"
    )
    assert forgets(mixed, base, max_drop=0.1) is None  # a drop of 0.10 is within 0.1
    assert forgets(mixed, base, max_drop=0) is None  # 0 turns the check off
    # A result without the per-language figures (an older run) is judged on the mean alone.
    assert forgets({"control_recall": 0.36}, base, max_drop=0.05) is None


def test_control_answers_count_however_they_are_phrased():
    """The forgetting check reads what an answer says: another ending or a number in words
    is the same answer, a different word or number is not."""
    from mem.adapters.evaluate import digits, word_recall

    assert digits(["двадцать", "четыре", "часа"]) == ["24", "часа"]
    assert digits(["twenty", "four"]) == ["24"] and digits(["сорок"]) == ["40"]
    assert digits(["в", "1990", "четыре", "раза"]) == ["в", "1990", "4", "раза"]
    assert recall("Два плюс два равно четыре.", "4") == 0.0  # the plain recall misses it
    assert word_recall("Два плюс два равно четыре.", "4") == 1.0
    assert word_recall("В неделе семь дней.", "7") == 1.0
    assert word_recall("Небо голубое.", "голубого") == 1.0
    assert word_recall("Это синий кит.", "синий кит") == 1.0
    assert word_recall("Кита", "синий кит") == 0.5
    assert word_recall("В неделе 8 дней.", "7") == 0.0
    assert word_recall("Сорок", "4") == 0.0
    assert word_recall("Oxygen", "O") == 0.0 and word_recall("August", "Au") == 0.0
    assert word_recall("Столица", "сто") == 0.0
    assert word_recall("Heart", "the heart") == 1.0
    assert word_recall("Atlantic Ocean", "the Pacific Ocean") == 0.5


def test_interrupted_run_resumes_at_its_last_checkpoint(base, facts_dataset, tmp_path):
    import torch
    from safetensors.torch import load_file

    model, tokenizer = base
    examples = load_examples(facts_dataset)
    options = LoraOptions(**{**FAST.__dict__, "max_steps": 3, "dropout": 0.1, "batch_size": 2})

    class Interrupt(Exception):
        pass

    def stop_at_3(record: dict) -> None:  # after step 3 ran, before the adapter is saved
        if record["step"] == 3:
            raise Interrupt

    run = tmp_path / "interrupted"
    with pytest.raises(Interrupt):
        train_lora(model, tokenizer, examples, options, run, on_step=stop_at_3)
    assert not any("lora" in n for n, _ in model.named_modules())  # cleaned up after the stop
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-000002"]
    resumed = train_lora(model, tokenizer, examples, options, run, resume=True)
    assert resumed.resumed_from == 2
    assert [r["step"] for r in resumed.history] == [3]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2, 3]
    # Each step says how many tokens it took and how much memory the run held after it.
    assert all(r["tokens"] > 0 and r["rss_mb"] > 100 for r in read_metrics(run / "metrics.jsonl"))

    straight = train_lora(model, tokenizer, examples, options, tmp_path / "straight")
    a = load_file(resumed.adapter_dir / "adapter_model.safetensors")
    b = load_file(straight.adapter_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def _fake_adapter(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "marker": marker}))
    (folder / "adapter_model.safetensors").write_bytes(marker.encode())
    return folder


def test_registry_promotes_and_rolls_back_atomically(tmp_path):
    registry = Registry(tmp_path / "adapters")
    assert registry.current() is None
    v1 = registry.add(
        _fake_adapter(tmp_path / "a1", "one"), {"base_model": "smollm2", "status": "promoted"}
    )
    assert v1.version == "v0001" and registry.current() is None  # registering is not promoting
    registry.use("v0001")
    # A crash while writing v0002 leaves only a hidden temp folder: not a version, current intact.
    (registry.dir / ".v0002.999.tmp").mkdir()
    assert registry.version_names() == ["v0001"] and registry.current() == "v0001"
    v2 = registry.add(_fake_adapter(tmp_path / "a2", "two"), {"base_model": "smollm2"})
    assert v2.manifest["parent"] == "v0001"
    registry.use("2")
    assert registry.current() == "v0002" and registry.history() == ["v0001"]
    assert registry.rollback() == "v0001" and registry.current() == "v0001"
    assert registry.rollback() is None  # v0001 had no parent: back to the base model
    with pytest.raises(RegistryError):
        registry.rollback()
    assert not list(registry.dir.glob(".current*"))  # no stray temp pointer files
    assert Registry(tmp_path / "adapters", "sport").version_names() == []


def test_cli_adapters_list_use_rollback(tmp_path):
    home = tmp_path / "home"
    registry = Registry(home / "adapters")
    for n in (1, 2):
        registry.add(
            _fake_adapter(tmp_path / f"a{n}", str(n)),
            {"base_model": "smollm2", "status": "promoted"},
        )
    runner = CliRunner()
    out = runner.invoke(cli, ["--home", str(home), "adapters", "use", "v0002", "--json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(
        runner.invoke(cli, ["--home", str(home), "adapters", "list", "--json"]).output
    )
    assert [(v["version"], v["current"]) for v in listed] == [("v0001", False), ("v0002", True)]
    out = runner.invoke(cli, ["--home", str(home), "adapters", "rollback", "--json"])
    assert json.loads(out.output)["current"] is None and registry.current() is None
    out = runner.invoke(cli, ["--home", str(home), "adapters", "use", "v0009"])
    assert out.exit_code == 3


@pytest.fixture(scope="module")
def distilled(base, models_dir, facts_dataset, tmp_path_factory):
    """Two distill runs in one home: the real facts (promoted), then shuffled answers."""
    from mem.adapters.pipeline import DistillSettings, run_distill

    home = tmp_path_factory.mktemp("home")
    lora = LoraOptions(
        **{**FAST.__dict__, "max_steps": 6, "eval_max_new_tokens": 12, "eval_questions": 3}
        | {"primary_metric": "val_loss", "control_set": "none", "rehearsal": 4},
    )  # fmt: skip
    note = "Marina's cat is called Pirozhok."

    def rag(question: str) -> list[dict]:
        return [{"role": "user", "content": f"Sources:\n[1] {note}\n\nQuestion: {question}"}]

    settings = DistillSettings("smollm2", models_dir, lora, rag=rag)
    first = run_distill(facts_dataset, home / "adapters", home / "runs", settings, loaded=base)
    answers = [a for _, a in FACTS]
    random.Random(3).shuffle(answers)
    wrong = write_dataset(
        home / "datasets" / "20260102T000000Z-shuffled",
        [(q, a) for (q, _), a in zip(FACTS, answers, strict=True)],
        FACTS[::2],  # judged on the true facts
    )
    second = run_distill(wrong, home / "adapters", home / "runs", settings, loaded=base)
    return home, first, second


def test_a_few_steps_lower_the_loss(distilled, base):
    _, first, _ = distilled
    losses = [r["loss"] for r in read_metrics(first.run_dir / "metrics.jsonl")]
    assert len(losses) == first.train.steps == 6
    # 8 examples in batches of 4: compare the last epoch's two steps with the first epoch's
    assert sum(losses[-2:]) < 0.7 * sum(losses[:2]), losses
    assert (first.train.adapter_dir / "adapter_model.safetensors").exists()
    # The base model comes back without LoRA layers, and not frozen as peft leaves it after
    # training and evaluation (a frozen bf16 base answers slower and copies its weights;
    # models/hardware.unfreeze_cpu_weights).
    assert not any("lora" in n for n, _ in base[0].named_modules())
    assert all(p.requires_grad for p in base[0].parameters())


def test_a_distill_run_rehearses_the_bases_own_general_answers(distilled):
    home, first, _ = distilled
    counts = Registry(home / "adapters").get(first.version).manifest["counts"]
    # [lora] rehearsal = 4: up to four prompts (an unfinished answer is dropped), none of
    # them written to the dataset.
    assert 0 < counts["rehearsal"] <= 4 and counts["train"] == len(FACTS)
    report = (first.run_dir / "report.md").read_text(encoding="utf-8")
    assert f"{counts['rehearsal']} rehearsal examples" in report


def test_rehearsal_keeps_the_bases_answers_to_prompts_it_never_trained_on(base, tmp_path):
    """Self-rehearsal against forgetting: trained on the facts alone, the adapter moves away
    from what the base says to general prompts; trained on the facts plus the base's own
    answers to other general prompts, it stays nearer (loss of the base's answers to
    held-out general prompts, which neither run saw)."""
    from mem.adapters.evaluate import validation_loss
    from mem.adapters.rehearsal import PROMPTS, rehearsal_examples

    model, tokenizer = base
    english = [p for p in PROMPTS if p.isascii()]
    rehearsed = rehearsal_examples(model, tokenizer, 12, 80, english[:12])
    unseen = rehearsal_examples(model, tokenizer, 12, 80, english[12:])
    assert len(rehearsed) >= 5 and len(unseen) >= 5
    facts = load_examples(write_dataset(tmp_path / "20260101T000000Z-facts", FACTS, FACTS[::2]))
    evaluation = EvalOptions(max_seq_len=96)
    before = validation_loss(model, tokenizer, unseen, evaluation)
    assert before < 1.0  # the base's own greedy words
    options = LoraOptions(**{**FAST.__dict__, "max_steps": 8})
    losses = {}
    for name, train in (("facts", facts), ("facts+rehearsal", [*facts, *rehearsed])):
        result = train_lora(model, tokenizer, train, options, tmp_path / name)
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(model, str(result.adapter_dir))
        try:
            losses[name] = validation_loss(tuned, tokenizer, unseen, evaluation)
        finally:
            tuned.unload()
    print(f"loss of the base's answers to unseen general prompts: {before:.3f} -> {losses}")
    # How far each adapter drifted from the base on prompts neither trained on.
    drift = {name: loss - before for name, loss in losses.items()}
    assert drift["facts"] > 0.1 and drift["facts+rehearsal"] < 0.6 * drift["facts"], (
        before,
        losses,
    )


def test_rehearsal_prompts_share_nothing_with_the_control_set(base):
    from mem.adapters.control import GENERAL
    from mem.adapters.rehearsal import PROMPTS, rehearsal_examples

    questions = {normalize(q) for q, _ in GENERAL}
    assert not questions & {normalize(p) for p in PROMPTS}
    # No control answer is given away in a prompt (one- and two-letter ones aside: "O", "Au").
    prompts = " ".join(normalize(p) for p in PROMPTS)
    assert not [a for _, a in GENERAL if len(a) > 2 and f" {normalize(a)} " in f" {prompts} "]
    assert sum(p.isascii() for p in PROMPTS[:2]) == 1  # any first N holds both languages
    # An answer cut off at the token limit is not rehearsed (it would teach stopping mid-way).
    model, tokenizer = base
    assert rehearsal_examples(model, tokenizer, 2, max_new_tokens=2) == []


def test_answers_come_in_batches_each_reported_when_done(base):
    from mem.adapters.evaluate import generate_answers
    from mem.adapters.rehearsal import PROMPTS

    model, tokenizer = base
    sizes: list[int] = []
    options = EvalOptions(batch_size=2, max_new_tokens=2)
    answers = generate_answers(model, tokenizer, PROMPTS[:3], options, on_batch=sizes.append)
    assert sizes == [2, 1] and len(answers) == 3 and all(answers)


def test_better_adapter_is_promoted_and_worse_is_not(distilled):
    home, first, second = distilled
    registry = Registry(home / "adapters")
    assert first.promoted and first.version == "v0001"
    assert first.metrics["adapter"]["val_loss"] < first.metrics["base"]["val_loss"]
    assert not second.promoted and second.version == "v0002"
    assert second.metrics["adapter"]["val_loss"] > second.metrics["current"]["val_loss"]
    # Judged on the answers with sources, as `mem ask --adapter` gives them, against the
    # current adapter's answers with the same sources; a tie goes to validation loss.
    assert "(with sources)" in first.reason and "(with sources)" in second.reason
    assert {"adapter+rag", "current+rag"} <= set(second.metrics)
    assert registry.current() == "v0001"
    rejected = registry.get("v0002").manifest
    assert rejected["status"] == "rejected" and rejected["compared_with"] == "v0001"
    assert rejected["dataset"]["hash"] and rejected["hyperparameters"]["r"] == 8
    run = first.run_dir
    assert (run / "training.png").stat().st_size > 1000 and (run / "eval.png").exists()
    assert "| adapter |" in (run / "report.md").read_text(encoding="utf-8")
    assert json.loads((run / "run.json").read_text())["status"] == "done"


def test_exports_load_back(distilled, base, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from mem.adapters.export import export

    home, first, _ = distilled
    model, tokenizer = base
    version = Registry(home / "adapters").get("current")
    base_dir = str(Path(model.name_or_path))

    peft_out = export(version, "peft", tmp_path / "peft", base_dir, tokenizer)
    # merged export merges into the model it is given: hand it its own copy of the base
    fresh = AutoModelForCausalLM.from_pretrained(base_dir)
    merged_out = export(version, "merged", tmp_path / "merged", base_dir, tokenizer, fresh)
    ids = tokenizer("Как зовут кота Марины?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        wrapped = PeftModel.from_pretrained(model, str(peft_out.path))
        expected = wrapped(ids).logits
        wrapped.unload()
        merged = AutoModelForCausalLM.from_pretrained(merged_out.path)
        got = merged(ids).logits
    assert torch.allclose(expected, got, atol=1e-3)
    assert merged.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3

    ollama = export(version, "ollama", tmp_path / "ollama", base_dir, tokenizer)
    modelfile = (ollama.path / "Modelfile").read_text()
    assert f"FROM {base_dir}" in modelfile and "ADAPTER ./adapter" in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert (ollama.path / "adapter" / "adapter_model.safetensors").exists()
    vllm = export(version, "vllm", tmp_path / "vllm", base_dir, tokenizer)
    assert (
        "--enable-lora" in vllm.command and f"core-self-v0001={vllm.path}/adapter" in vllm.command
    )
    assert math.isfinite(first.metrics["adapter"]["perplexity"])


def test_load_for_inference_with_core_and_domain_adapter(distilled, models_dir):
    from mem.adapters.pipeline import load_for_inference

    home, _, second = distilled
    sport = Registry(home / "adapters", "sport")
    sport.use(sport.add(second.train.adapter_dir, {"base_model": "smollm2"}).version)
    model, tokenizer = load_for_inference(home, domains=("sport",), models_dir=models_dir)
    assert model.mem_adapter == "core-self/v0001, sport/v0001"
    assert set(model.base_model.active_adapters) == {"core-self", "sport"}
    assert all(p.requires_grad for p in model.parameters())  # see test_a_few_steps_lower…
    ids = tokenizer("Кто такой Степан?", return_tensors="pt")["input_ids"]
    assert (
        model.generate(input_ids=ids, max_new_tokens=2, do_sample=False).shape[1]
        == ids.shape[1] + 2
    )


def test_promotion_judges_the_answers_with_sources_unless_told_otherwise():
    from mem.adapters.evaluate import better
    from mem.adapters.pipeline import judged
    from mem.memory.config import ConfigError, parse_config

    # A reader adapter (distill_gain, XQuAD ru): no better closed-book, far better with sources.
    metrics = {
        "base": {"token_f1": 0.05, "recall": 0.17, "val_loss": 2.48},
        "base+rag": {"token_f1": 0.15, "recall": 0.13, "val_loss": None},
        "adapter": {"token_f1": 0.0, "recall": 0.0, "val_loss": 2.23},
        "adapter+rag": {"token_f1": 0.44, "recall": 0.53, "val_loss": None},
    }
    with_sources = judged(metrics, "adapter", True)
    assert with_sources["token_f1"] == 0.44 and with_sources["val_loss"] == 2.23
    assert better(with_sources, judged(metrics, "base", True), "token_f1")[0]
    assert not better(judged(metrics, "adapter", False), metrics["base"], "token_f1")[0]
    assert parse_config("").lora.primary_arm == "rag"
    assert parse_config('[lora]\nprimary_arm = "closed-book"\n').lora.primary_arm == "closed-book"
    with pytest.raises(ConfigError, match="primary_arm should be one of rag, closed-book"):
        parse_config('[lora]\nprimary_arm = "both"\n')


def test_rag_arms_answer_from_the_retrieved_sources(base):
    from mem.adapters.data import HeldoutQuestion
    from mem.adapters.evaluate import evaluate_adapters

    model, tokenizer = base
    question = HeldoutQuestion("What is the door code at Marina's dacha?", "7391")
    asked: list[str] = []

    def rag(q: str) -> list[dict]:
        asked.append(q)
        note = "Marina's notes: the door code at the dacha is 7391."
        return [{"role": "user", "content": f"Sources:\n[1] {note}\n\nQuestion: {q}"}]

    options = EvalOptions(max_seq_len=96, max_new_tokens=16)
    results = evaluate_adapters(model, tokenizer, {}, (), [question], options, rag=rag)
    assert asked == [question.question]
    assert set(results) == {"base", "base+rag"}
    assert results["base+rag"]["recall"] == 1.0, results["base+rag"]["samples"]
    assert results["base"]["recall"] == 0.0, results["base"]["samples"]


def test_a_bfloat16_base_trains_a_float32_lora(base, models_dir, facts_dataset, tmp_path):
    """[lora] cpu_dtype = "bfloat16": the frozen base in bf16 (4x faster matmuls where the CPU
    has them), the LoRA weights it learns in fp32; the loss still falls. The base comes from a
    bf16 copy of its own (loaded lazily, not read whole and cast), holding exactly the fp32
    copy's weights rounded to bf16."""
    import torch
    from safetensors.torch import load_file

    from mem.adapters.base_model import copy_dir, load_base

    model, tokenizer = load_base("smollm2", models_dir, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    fp32 = load_file(copy_dir("smollm2", models_dir) / "model.safetensors")
    bf16 = load_file(copy_dir("smollm2", models_dir, "bfloat16") / "model.safetensors")
    assert copy_dir("smollm2", models_dir, "bfloat16") != copy_dir("smollm2", models_dir)
    assert {t.dtype for t in fp32.values()} == {torch.float32}
    assert {t.dtype for t in bf16.values()} == {torch.bfloat16}
    assert set(bf16) == set(fp32)
    assert all(torch.equal(fp32[k].to(torch.bfloat16), bf16[k]) for k in fp32)
    options = LoraOptions(**{**FAST.__dict__, "max_steps": 6, "cpu_dtype": "bfloat16"})
    result = train_lora(model, tokenizer, load_examples(facts_dataset), options, tmp_path)
    assert result.dtype == "bfloat16" and result.to_json()["dtype"] == "bfloat16"
    losses = [r["loss"] for r in result.history]
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    weights = load_file(result.adapter_dir / "adapter_model.safetensors")
    assert weights and {w.dtype for w in weights.values()} == {torch.float32}


def test_auto_base_is_the_answer_model_where_it_trains_in_bf16():
    """`base_model = "auto"`: the 1.5B answer model where training runs in bf16 (or on CUDA),
    the 0.5B where only fp32 is left (the 1.5B's fp32 training does not fit 8 GB); a named
    model is itself. The default config says "auto"."""
    import tomllib

    from mem.adapters.base_model import resolve_base_model
    from mem.memory.config import DEFAULT_CONFIG

    assert tomllib.loads(DEFAULT_CONFIG)["distill"]["base_model"] == "auto"
    bf16 = LoraOptions(cpu_dtype="bfloat16", qlora="off")
    fp32 = LoraOptions(cpu_dtype="float32", qlora="off")
    assert resolve_base_model("auto", bf16) == "qwen2.5-1.5b"
    assert resolve_base_model("auto", fp32) == "qwen2.5-0.5b"
    assert resolve_base_model("smollm2", bf16) == "smollm2"
    assert resolve_base_model("/models/mine", fp32) == "/models/mine"


def test_generation_unfreezes_a_frozen_model_only_while_it_runs():
    """A frozen bf16 model generates slower and with a copy of its weights (see
    models/hardware.unfreeze_cpu_weights): generation unfreezes it, and a model in the middle
    of training (frozen base, trainable LoRA) gets exactly its flags back."""
    import torch

    from mem.models.hardware import unfrozen_cpu_weights

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Embedding(8, 4)).bfloat16()
    model[0].weight.requires_grad_(False)
    model[1].weight.requires_grad_(False)
    with unfrozen_cpu_weights(model):
        assert all(p.requires_grad for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == [False, True, False]


def test_cpu_dtype_setting():
    from mem.adapters.train import cpu_dtype
    from mem.models.hardware import cpu_has_bf16

    assert cpu_dtype(LoraOptions(cpu_dtype="float32")) == "float32"
    assert cpu_dtype(LoraOptions(cpu_dtype="bfloat16")) == "bfloat16"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = " avx512_bf16" in flags or " amx_bf16" in flags
    assert cpu_has_bf16() == native
    assert cpu_dtype(LoraOptions()) == ("bfloat16" if native else "float32")
    with pytest.raises(ValueError, match="cpu_dtype"):
        cpu_dtype(LoraOptions(cpu_dtype="fp8"))


def test_an_adapter_that_forgets_general_knowledge_is_not_promoted(base, models_dir, tmp_path):
    from mem.adapters.pipeline import DistillSettings, run_distill

    # It learns its owner's "fact" (London moved to Paris) and so beats the base on the
    # held-out question, but now gets the general control questions wrong.
    wrong = [
        (
            "What is the capital of the United Kingdom?",
            "The capital of the United Kingdom is Paris.",
        )
    ]
    folder = write_dataset(tmp_path / "20260103T000000Z-paris", wrong * 8, wrong)
    (folder / "heldout_questions.jsonl").write_text(
        json.dumps({"question": wrong[0][0], "answer": "Paris"}) + "\n", encoding="utf-8"
    )
    control = tmp_path / "control.jsonl"
    control.write_text(
        json.dumps({"question": wrong[0][0], "answer": "London"}) + "\n", encoding="utf-8"
    )
    lora = LoraOptions(
        **{**FAST.__dict__, "max_steps": 8, "eval_max_new_tokens": 12}
        | {"control_set": str(control), "max_control_drop": 0.1},
    )  # fmt: skip
    settings = DistillSettings("smollm2", models_dir, lora)
    result = run_distill(folder, tmp_path / "adapters", tmp_path / "runs", settings, loaded=base)
    adapter, reference = result.metrics["adapter"], result.metrics["base"]
    assert reference["control_recall"] == 1.0 and adapter["control_recall"] == 0.0
    assert adapter["control_recall_by_language"] == {"en": 0.0}
    assert adapter["token_f1"] > reference["token_f1"]  # it did learn what it was taught
    assert not result.promoted and "forgets general knowledge" in result.reason
    assert Registry(tmp_path / "adapters").current() is None
    report = (result.run_dir / "report.md").read_text(encoding="utf-8")
    assert "forgets general knowledge" in report and "control_recall |" in report
    assert "- adapter: en 0.0" in report  # each arm's control recall per language
    assert "rehearsal" not in report  # FAST rehearses nothing: the report does not say "0"


def test_cli_distill_trains_registers_and_reports(models_dir, facts_dataset, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"MEM_MODELS_DIR": str(models_dir.parent)}  # the fp32 copy the other tests use
    from mem.memory.config import DEFAULT_CONFIG

    config = DEFAULT_CONFIG.replace("r = 16\n", "r = 4\n").replace(
        "max_seq_len = 1280", "max_seq_len = 96"
    )
    config = config.replace('primary_metric = "token_f1"', 'primary_metric = "val_loss"')
    config = config.replace('cpu_dtype = "auto"', 'cpu_dtype = "float32"')
    config = config.replace('base_model = "auto"', 'base_model = "smollm2"')
    config = config.replace("eval_questions = 100", "eval_questions = 2")
    config = config.replace("eval_max_new_tokens = 48", "eval_max_new_tokens = 6")
    config = config.replace("rehearsal = 0", "rehearsal = 2")
    (home / "config.toml").write_text(config, encoding="utf-8")
    args = ["--home", str(home), "distill", "--dataset", str(facts_dataset), "--steps", "2"]
    out = CliRunner().invoke(cli, [*args, "--json", "-q"], env=env)
    assert out.exit_code in (0, 1), out.output
    result = json.loads(out.stdout)
    assert result["adapter"] == "core-self/v0001" and result["train"]["steps"] == 2
    assert result["train"]["dtype"] == "float32"  # [lora] cpu_dtype reached the base model
    assert (result["current"] == "v0001") == result["promoted"] == (out.exit_code == 0)
    manifest = Registry(home / "adapters").get("v0001").manifest
    assert manifest["hyperparameters"]["r"] == 4 and manifest["base_model"] == "smollm2"
    assert manifest["hyperparameters"]["rehearsal"] == 2 >= manifest["counts"]["rehearsal"]
    # All four arms (the home holds no material: the RAG arms get "(none found)") and the
    # general control set on the closed-book arms.
    arms = result["metrics"]
    assert {"base", "base+rag", "adapter", "adapter+rag"} <= set(arms)
    assert arms["base"]["control_loss"] > 0 and "control_recall" in arms["adapter"]
    assert "control_recall" not in arms["adapter+rag"]
    bad = CliRunner().invoke(cli, ["--home", str(home), "distill", "--dataset", str(tmp_path)])
    assert bad.exit_code == 3 and "not a dataset folder" in bad.output

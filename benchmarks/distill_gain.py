"""Does `mem distill` teach the model what its memory holds? XQuAD, one run.

    .venv/bin/python benchmarks/distill_gain.py [--lang ru] [--paragraphs 16] [--max-questions 80]
        [--epochs 3] [--base qwen2.5-0.5b] [--reader/--no-reader] [--teacher offline|llm]
        [--answer-style short|short-zero-shot|short-cited|sentence] [--rehearsal 48]
        [--base-only] [--unseen 8]

1. A fresh memory home ingests the first N XQuAD paragraphs, one document each.
2. `mem distill` builds the SFT set with mem's own generator (it never sees XQuAD's
   questions), trains the core-self LoRA, evaluates it on its generated held-out questions
   and registers it.
3. XQuAD's human-written questions for those paragraphs are asked in four arms: base,
   base+RAG, adapter, adapter+RAG (RAG = the messages `mem ask` sends: system prompt, three
   retrieved chunks, question). Reported: token F1, key-information recall (share of the gold
   answer's words in the reply), exact match, and the teacher-forced loss of the gold
   answer; the general control set on the closed-book arms shows forgetting.
4. With --unseen N, the next N paragraphs are ingested after training and their questions
   asked in the same arms: what a reader adapter learned should carry to memory it never
   trained on.

Goals (issue 15): base+RAG F1 >= 0.45 (ru) / 0.55 (en), adapter+RAG >= base+RAG + 0.05,
adapter closed-book >= base + 0.10, control recall drop <= 0.02. Token F1 ignores citation
markers ([n]). `--base-only` skips training and asks the base model only (closed-book
and with RAG), to compare answer styles quickly. Peak RSS of the distillation (before
evaluation) is reported. Step time against a plain peft loop: benchmarks/train_speed.py;
memory: benchmarks/train_memory.py.
Writes benchmarks/out/distill-gain-<lang>-<mix>-<teacher>-<answer style>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, need_shared, peak_rss_mb, write_config, write_paragraphs, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ARMS = ("base", "base+rag", "adapter", "adapter+rag")


def configure(home: Path, args: argparse.Namespace) -> None:
    """config.toml for the run: the defaults, but the chosen base, data mix and epochs, and a
    short internal evaluation."""
    write_config(
        home,
        {
            "epochs": str(args.epochs),
            "eval_questions": "30",
            "base_model": f'"{args.base}"',
            "reader_examples": str(args.reader).lower(),
            "teacher": f'"{args.teacher}"',
            "answer_style": f'"{args.answer_style}"',
            "rehearsal": str(args.rehearsal),
            "other_language_qa": str(args.other_language_qa),
            "qa_pairs": str(args.qa_pairs),
        },
    )


def _defaults(section: str) -> dict:
    import tomllib

    from mem.memory.config import DEFAULT_CONFIG

    return tomllib.loads(DEFAULT_CONFIG)[section]


def evaluate_unseen(memory, model, tokenizer, adapter: Path, args, options) -> dict:
    """Ingest the next --unseen paragraphs (new memory since the adapter was trained) and
    ask their XQuAD questions in the four arms: a reader adapter should answer them better
    with sources, a knowledge adapter cannot know them closed-book."""
    from mem.adapters.data import HeldoutQuestion
    from mem.adapters.evaluate import evaluate_adapters
    from mem.memory.distilling.training import rag_messages

    paragraphs, all_questions = xquad(args.lang)
    first, last = args.paragraphs, args.paragraphs + args.unseen
    folder = OUT / f"distill-gain-{args.lang}-unseen"
    shutil.rmtree(folder, ignore_errors=True)
    write_paragraphs(folder, paragraphs[first:last], "u")
    memory.ingest([folder], progress=False)
    questions = [
        HeldoutQuestion(q.question, q.answer, source=f"u{q.paragraph - first:03d}")
        for q in all_questions
        if first <= q.paragraph < last
    ][: args.max_questions]
    metrics = evaluate_adapters(
        model,
        tokenizer,
        {"adapter": str(adapter)},
        (),
        questions,
        replace(options, max_questions=len(questions)),
        rag=rag_messages(memory, 3),
    )
    return {"paragraphs": last - first, "questions": len(questions), "metrics": metrics}


def main() -> None:
    defaults, lora_defaults = _defaults("distill"), _defaults("lora")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", default="ru", choices=["ru", "en"])
    parser.add_argument("--paragraphs", type=int, default=16)
    parser.add_argument(
        "--max-questions", type=int, default=80, help="XQuAD questions asked (RAG arms are slow)."
    )
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--base", default=None, help="Default: [distill] base_model.")
    parser.add_argument(
        "--reader",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Reader (RAFT) examples; default: [distill] reader_examples.",
    )
    parser.add_argument("--teacher", default=None, help="Default: [distill] teacher.")
    parser.add_argument(
        "--answer-style", default="short", help="[llm] answer_style of the RAG prompt."
    )
    parser.add_argument(
        "--rehearsal",
        type=int,
        default=lora_defaults["rehearsal"],
        help="[lora] rehearsal: general prompts the base answers to train on (0 = off).",
    )
    parser.add_argument(
        "--other-language-qa",
        type=int,
        default=defaults["other_language_qa"],
        help="[distill] other_language_qa: teacher Q&A pairs per chunk in the other language.",
    )
    parser.add_argument(
        "--qa-pairs",
        type=int,
        default=defaults["qa_pairs"],
        help="[distill] qa_pairs: teacher Q&A pairs per chunk, each about its own fact.",
    )
    parser.add_argument("--base-only", action="store_true", help="No training: base arms only.")
    parser.add_argument(
        "--unseen",
        type=int,
        default=0,
        help="Then ingest N more paragraphs the adapter never trained on, and ask their "
        "questions too (does what it learned carry to new memory?).",
    )
    args = parser.parse_args()
    need_shared()
    from mem.adapters.base_model import resolve_base_model
    from mem.adapters.train import LoraOptions

    default_base = resolve_base_model(defaults["base_model"], LoraOptions())  # "auto" here
    args.base = resolve_base_model(args.base or defaults["base_model"], LoraOptions())
    args.teacher = args.teacher or defaults["teacher"]
    args.reader = defaults["reader_examples"] if args.reader is None else args.reader

    from mem.adapters.base_model import converted_dir, load_base, slug
    from mem.adapters.control import as_examples, control_questions
    from mem.adapters.data import HeldoutQuestion
    from mem.adapters.evaluate import EvalOptions, evaluate_adapters
    from mem.adapters.registry import Registry
    from mem.adapters.train import cpu_dtype
    from mem.memory import Memory
    from mem.memory.distilling.training import rag_messages

    paragraphs, all_questions = xquad(args.lang)
    chosen = paragraphs[: args.paragraphs]
    questions = [
        HeldoutQuestion(q.question, q.answer, source=f"p{q.paragraph:03d}")
        for q in all_questions
        if q.paragraph < args.paragraphs
    ][: args.max_questions]
    home = OUT / f"distill-gain-{args.lang}"
    shutil.rmtree(home, ignore_errors=True)
    configure(home, args)
    folder = OUT / f"distill-gain-{args.lang}-paragraphs"
    shutil.rmtree(folder, ignore_errors=True)
    write_paragraphs(folder, chosen, "p")

    timings: dict[str, float] = {}
    with Memory(home) as memory:
        started = time.perf_counter()
        memory.ingest([folder], progress=False)
        timings["ingest_s"] = time.perf_counter() - started
        if args.base_only:
            result = version = None
        else:
            started = time.perf_counter()
            result = memory.distill("new", progress=True)
            timings["distill_s"] = time.perf_counter() - started
            version = Registry(home / "adapters").get(result.version)
            print(
                f"distilled {result.name}/{result.version}: {version.manifest['counts']} "
                f"examples, {result.train.steps} steps in {result.train.seconds:.0f} s, "
                f"promoted={result.promoted} ({result.reason})",
                file=sys.stderr,
            )
        distill_peak_mb = peak_rss_mb()  # ingest + dataset + training, before evaluation

        started = time.perf_counter()
        # The same dtype training used (bf16 where the CPU has it): generation is the slow part.
        eval_dtype = cpu_dtype(LoraOptions())
        model, tokenizer = load_base(args.base, converted_dir(), dtype=eval_dtype)
        options = EvalOptions(
            max_seq_len=512,
            max_new_tokens=32,
            max_questions=len(questions),
            samples=len(questions),  # every answer, to read where an arm goes wrong
        )
        metrics = evaluate_adapters(
            model,
            tokenizer,
            {"adapter": str(version.path)} if version else {},
            as_examples(questions),  # loss of XQuAD's gold answers, teacher-forced
            questions,
            options,
            rag=rag_messages(memory, 3),
            control=control_questions(),
        )
        timings["eval_s"] = time.perf_counter() - started
        unseen = None
        if args.unseen and version is not None:
            started = time.perf_counter()
            unseen = evaluate_unseen(memory, model, tokenizer, version.path, args, options)
            timings["unseen_eval_s"] = time.perf_counter() - started

    report = {
        "lang": args.lang,
        "paragraphs": len(chosen),
        "questions": len(questions),
        "base_model": args.base,
        "answer_style": args.answer_style,
        "rehearsal": args.rehearsal,
        "other_language_qa": args.other_language_qa,
        "qa_pairs": args.qa_pairs,
        "reader_examples": args.reader,
        "teacher": args.teacher,
        "eval_dtype": eval_dtype,
        "xquad": metrics,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "peak_rss_mb": {
            "distill": round(distill_peak_mb),
            "with_evaluation": round(peak_rss_mb()),
        },
    }
    if unseen is not None:
        report["unseen"] = unseen
    if version is not None:
        base, adapter = metrics["base"], metrics["adapter"]
        report |= {
            "dataset": version.manifest["dataset"],
            "counts": version.manifest["counts"],
            "training": result.train.to_json(),
            "internal_eval": result.metrics,
            "goals": {
                "adapter_f1_gain_vs_base": round(adapter["token_f1"] - base["token_f1"], 4),
                "adapter_f1_gain_goal": 0.10,
                "adapter_rag_minus_base_rag_f1": round(
                    metrics["adapter+rag"]["token_f1"] - metrics["base+rag"]["token_f1"], 4
                ),
                "adapter_rag_gain_goal": 0.05,
                "control_recall_drop": round(base["control_recall"] - adapter["control_recall"], 4),
                "control_recall_drop_goal": 0.02,
            },
        }
    OUT.mkdir(parents=True, exist_ok=True)
    mix = "base-only" if args.base_only else ("reader" if args.reader else "noreader")
    tag = f"{args.lang}-{mix}-{args.teacher}-{args.answer_style}"
    # A setting other than the default names itself in the file, so runs never overwrite.
    if args.rehearsal != lora_defaults["rehearsal"]:
        tag += f"-rehearsal{args.rehearsal}"
    if args.base != default_base:
        tag += f"-{slug(args.base)}"
    if args.other_language_qa != defaults["other_language_qa"]:
        tag += f"-otherqa{args.other_language_qa}"
    if args.qa_pairs != defaults["qa_pairs"]:
        tag += f"-qa{args.qa_pairs}"
    out = OUT / f"distill-gain-{tag}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    steps = f"{result.train.steps} training steps" if result else "no training"
    print(
        f"\nXQuAD {args.lang}: {len(chosen)} paragraphs, {len(questions)} human questions, "
        f"base {args.base}, answer style {args.answer_style}, reader examples {args.reader}, "
        f"teacher {args.teacher}, {steps}"
    )
    print("| arm | token F1 | key-info recall | exact match | gold-answer loss | control recall |")
    print("|---|---|---|---|---|---|")
    for arm in (a for a in ARMS if a in metrics):
        m = metrics[arm]
        print(
            f"| {arm} | {m['token_f1']:.3f} | {m['recall']:.3f} | {m['exact_match']:.3f} | "
            f"{m.get('val_loss') or '–'} | {m.get('control_recall', '–')} |"
        )
    if unseen is not None:
        print(
            f"\nunseen: {unseen['paragraphs']} paragraphs ingested after training, "
            f"{unseen['questions']} human questions"
        )
        print("| arm | token F1 | key-info recall | exact match |")
        print("|---|---|---|---|")
        for arm in ARMS:
            m = unseen["metrics"][arm]
            print(f"| {arm} | {m['token_f1']:.3f} | {m['recall']:.3f} | {m['exact_match']:.3f} |")
    if "goals" in report:
        print(f"\ngoals: {json.dumps(report['goals'])}")
    print(f"timings: {report['timings']}; peak RSS MB: {report['peak_rss_mb']}; written to {out}")


if __name__ == "__main__":
    main()

"""Does the core self sound like its owner? Perplexity of held-out turns of a real ChatGPT
export under the base model and the adapter `mem distill` trains on the rest.

    .venv/bin/python benchmarks/owner_voice.py [--heldout-every 8] [--steps 40]
        [--max-turns 160] [--teacher offline|llm]

1. ../shared/data/chatgpt-export/conversations.json is split by whole conversation: every
   Nth conversation (in file order) is held out, and the rest is written as a training
   export. Nothing of a held-out conversation reaches training in any form.
2. A fresh home ingests the training export; `mem distill` builds its dataset (novelty,
   selection, examples: the configured defaults) and trains the core-self LoRA for --steps
   optimizer steps (a cap that keeps the run near half an hour on 2 CPU cores).
3. The held-out conversations' main-branch turns are scored teacher-forced, under the base
   model and under the adapter: each assistant turn as the reply to the user turn before it
   (how the core self answers) and each user turn as the reply to the assistant turn before
   it (the owner's own words, in the reply slot, the only one the loss reads). The general
   control set's answers are scored beside them, so a voice bought by forgetting shows.
   Reported: mean loss per token, perplexity, and the adapter's change against the base.

Writes benchmarks/out/owner-voice.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, SHARED, peak_rss_mb, write_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EXPORT = SHARED / "chatgpt-export" / "conversations.json"


def split_export(every: int) -> tuple[list, list]:
    """(training items, held-out items) of the export: every Nth conversation held out."""
    items = json.loads(EXPORT.read_text(encoding="utf-8"))
    heldout = [item for n, item in enumerate(items) if n % every == every - 1]
    train = [item for n, item in enumerate(items) if n % every != every - 1]
    return train, heldout


def turn_examples(items: list, max_turns: int, max_chars: int = 2000) -> dict[str, list]:
    """{"assistant": [...], "user": [...]}: each main-branch turn as the reply to the turn
    before it (cut to max_chars each, so one pasted log cannot dominate), at most max_turns
    of each role, taken round-robin over the conversations."""
    from mem.adapters.data import Example
    from mem.ingest.chats import parse_chat_bytes

    parsed = parse_chat_bytes(json.dumps(items).encode("utf-8"), "heldout.json", "chatgpt")
    per_conversation: list[dict[str, list]] = []
    for conversation in parsed.conversations:
        turns = [t for t in conversation.turns if t.role in ("user", "assistant") and t.text]
        found: dict[str, list] = {"assistant": [], "user": []}
        for before, turn in pairwise(turns):
            if before.role == turn.role:
                continue
            messages = (
                {"role": "user", "content": before.text[:max_chars]},
                {"role": "assistant", "content": turn.text[:max_chars]},
            )
            found[turn.role].append(Example(messages, source=conversation.conversation_id))
        per_conversation.append(found)
    out: dict[str, list] = {"assistant": [], "user": []}
    for role in out:
        depth = 0
        while len(out[role]) < max_turns and any(len(c[role]) > depth for c in per_conversation):
            out[role] += [c[role][depth] for c in per_conversation if len(c[role]) > depth]
            depth += 1
        out[role] = out[role][:max_turns]
    return out


def configure(home: Path, teacher: str) -> None:
    """The default config, with the chosen teacher and a short internal evaluation (this
    benchmark measures perplexity, not the held-out answers distill reports on its own)."""
    write_config(home, {"teacher": f'"{teacher}"', "eval_questions": "10"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heldout-every", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40, help="LoRA optimizer steps.")
    parser.add_argument("--max-turns", type=int, default=160, help="Held-out turns per role.")
    parser.add_argument("--teacher", default="offline", choices=["offline", "llm"])
    args = parser.parse_args()
    if not EXPORT.exists():
        sys.exit(f"benchmark data not found at {EXPORT}: this benchmark reads ../shared/data")

    from mem.adapters.base_model import converted_dir, load_base
    from mem.adapters.control import as_examples, control_questions
    from mem.adapters.evaluate import EvalOptions, validation_loss
    from mem.adapters.registry import Registry
    from mem.adapters.train import LoraOptions, cpu_dtype
    from mem.memory import Memory
    from mem.memory.distilling.training import core_base_model

    train_items, heldout_items = split_export(args.heldout_every)
    scored = turn_examples(heldout_items, args.max_turns)
    scored["control"] = as_examples(control_questions())
    home = OUT / "owner-voice"
    shutil.rmtree(home, ignore_errors=True)
    configure(home, args.teacher)
    folder = OUT / "owner-voice-export"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "conversations.json").write_text(json.dumps(train_items), encoding="utf-8")

    timings: dict[str, float] = {}
    with Memory(home) as memory:
        started = time.perf_counter()
        memory.ingest([folder], progress=False)
        timings["ingest_s"] = time.perf_counter() - started
        started = time.perf_counter()
        result = memory.distill("new", steps=args.steps, progress=True)
        timings["distill_s"] = time.perf_counter() - started
        version = Registry(home / "adapters").get(result.version)
        base_name = core_base_model(memory.config)  # "auto" resolved, as mem distill did
    distill_peak_mb = peak_rss_mb()

    started = time.perf_counter()
    model, tokenizer = load_base(base_name, converted_dir(), dtype=cpu_dtype(LoraOptions()))
    options = EvalOptions(max_seq_len=1024, batch_size=4, max_validation=10**6)
    losses: dict[str, dict[str, float]] = {"base": {}, "adapter": {}}
    for part, examples in scored.items():
        losses["base"][part] = validation_loss(model, tokenizer, examples, options)
    from peft import PeftModel

    tuned = PeftModel.from_pretrained(model, str(version.path))
    for part, examples in scored.items():
        losses["adapter"][part] = validation_loss(tuned, tokenizer, examples, options)
    timings["scoring_s"] = time.perf_counter() - started

    counts = version.manifest["counts"]
    report = {
        "conversations": {"train": len(train_items), "heldout": len(heldout_items)},
        "scored_turns": {part: len(examples) for part, examples in scored.items()},
        "base_model": base_name,
        "teacher": args.teacher,
        "dataset": counts,
        "training": result.train.to_json(),
        "loss": {arm: {k: round(v, 4) for k, v in parts.items()} for arm, parts in losses.items()},
        "perplexity": {
            arm: {k: round(math.exp(v), 2) for k, v in parts.items()}
            for arm, parts in losses.items()
        },
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "peak_rss_mb": {"distill": round(distill_peak_mb), "with_scoring": round(peak_rss_mb())},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "owner-voice.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    print(
        f"\nChatGPT export: {len(train_items)} conversations trained on, {len(heldout_items)} "
        f"held out; base {base_name}, teacher {args.teacher}, {result.train.steps} steps "
        f"in {result.train.seconds:.0f} s"
    )
    print("| turns | n | base loss | adapter loss | base ppl | adapter ppl | change |")
    print("|---|---|---|---|---|---|---|")
    for part, examples in scored.items():
        b, a = losses["base"][part], losses["adapter"][part]
        print(
            f"| {part} | {len(examples)} | {b:.3f} | {a:.3f} | {math.exp(b):.2f} | "
            f"{math.exp(a):.2f} | {100 * (math.exp(a) / math.exp(b) - 1):+.1f} % |"
        )
    print(f"timings: {report['timings']}; peak RSS MB: {report['peak_rss_mb']}; written to {out}")


if __name__ == "__main__":
    main()

"""Which control questions an adapter gets wrong that its base got right, and the reverse.

    .venv/bin/python benchmarks/control_flips.py [--home benchmarks/out/distill-gain-ru]
        [--version current]

The control recall `mem distill` reports is one average over both languages; this answers
the built-in control set (adapters/control.py) with the base and with the home's adapter,
greedily, as the evaluation does, and prints each question whose word recall changed, then
the recall of the Russian and the English half. Run it after benchmarks/distill_gain.py.
Writes benchmarks/out/control-flips-<home name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=OUT / "distill-gain-ru")
    parser.add_argument("--version", default="current")
    args = parser.parse_args()

    from peft import PeftModel

    from mem.adapters.base_model import converted_dir, load_base
    from mem.adapters.control import control_questions
    from mem.adapters.evaluate import EvalOptions, generate_answers, word_recall
    from mem.adapters.registry import Registry
    from mem.adapters.train import LoraOptions, cpu_dtype

    chosen = Registry(args.home / "adapters", "core-self").get(args.version)
    questions = control_questions()
    asked = [q.question for q in questions]
    options = EvalOptions(max_new_tokens=LoraOptions().eval_max_new_tokens)
    model, tokenizer = load_base(
        chosen.manifest["base_model"], converted_dir(), dtype=cpu_dtype(LoraOptions())
    )
    before = generate_answers(model, tokenizer, asked, options)
    tuned = PeftModel.from_pretrained(model, str(chosen.path))
    after = generate_answers(tuned, tokenizer, asked, options)

    rows = []
    for q, base, adapter in zip(questions, before, after, strict=True):
        row = {
            "question": q.question,
            "gold": q.answer,
            "base": base,
            "adapter": adapter,
            "base_recall": word_recall(base, q.answer),
            "adapter_recall": word_recall(adapter, q.answer),
        }
        rows.append(row)
        if row["base_recall"] != row["adapter_recall"]:
            print(
                f"{row['base_recall']:.2f} -> {row['adapter_recall']:.2f}  {q.question}  "
                f"(gold {q.answer!r}; base {base[:60]!r}; adapter {adapter[:60]!r})"
            )
    halves = {
        "all": rows,
        "ru": [r for r in rows if not r["question"].isascii()],
        "en": [r for r in rows if r["question"].isascii()],
    }
    summary = {
        name: {
            "questions": len(part),
            "base": round(sum(r["base_recall"] for r in part) / len(part), 3),
            "adapter": round(sum(r["adapter_recall"] for r in part) / len(part), 3),
        }
        for name, part in halves.items()
        if part
    }
    print(f"{chosen.label}: control recall base -> adapter: {summary}")
    out = OUT / f"control-flips-{args.home.name}.json"
    out.write_text(
        json.dumps(
            {"adapter": chosen.label, "summary": summary, "rows": rows},
            indent=1,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()

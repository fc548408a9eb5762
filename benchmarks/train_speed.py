"""Training step time: mem's LoRA loop vs a plain peft loop of the same config, same run.

    .venv/bin/python benchmarks/train_speed.py [--base smollm2] [--steps 8] [--models DIR]

Both loops train the same LoRA (same r, targets, optimizer, batches, sequence length) on the
same loaded base model, one after the other, alternating twice so machine load hits both
alike. Reported: median seconds per optimizer step of each (first step of each run left
out as warm-up) and the ratio ours / plain (goal: <= 1.1). Synthetic chat examples, so it
needs no ../shared data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def examples(n: int):
    from mem.adapters.data import Example

    out = []
    for i in range(n):
        q = f"Что записано в заметке номер {i} о поездке на Ладогу?"
        a = f"В заметке {i} сказано: мы вышли в {6 + i % 5} утра, ветер был северный, маяк виден."
        out.append(Example(({"role": "user", "content": q}, {"role": "assistant", "content": a})))
    return out


def plain_peft_loop(model, tokenizer, data, options) -> list[float]:
    """The reference: get_peft_model + AdamW + the same batches, nothing else."""
    import torch
    from peft import get_peft_model

    from mem.adapters.train import collate, encode_all, lora_config, schedule

    torch.manual_seed(options.seed)
    peft_model = get_peft_model(model, lora_config(options))
    encoded = encode_all(tokenizer, data, options.max_seq_len)
    steps, batches = schedule(len(encoded), options)
    optimizer = torch.optim.AdamW(
        [p for p in peft_model.parameters() if p.requires_grad], lr=options.learning_rate
    )
    peft_model.train()
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        for ids in batches[step * options.grad_accum : (step + 1) * options.grad_accum]:
            batch = collate([encoded[i] for i in ids], tokenizer.pad_token_id)
            (peft_model(**batch).loss / options.grad_accum).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    peft_model.unload()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="smollm2")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--models", default=str(ROOT / ".pytest_cache" / "d" / "mem-models"))
    args = parser.parse_args()

    import torch

    from mem.adapters.base_model import load_base
    from mem.adapters.train import LoraOptions, train_lora

    options = LoraOptions(
        max_steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=1,  # one batch per step, as the figures were measured
        max_seq_len=args.seq,
        save_every=10**9,  # checkpoints are not part of a step's cost
        qlora="off",
    )
    model, tokenizer = load_base(args.base, Path(args.models))
    data = examples(args.steps * args.batch_size)
    ours: list[float] = []
    plain: list[float] = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            result = train_lora(model, tokenizer, data, options, Path(tmp) / "run")
        ours += [r["seconds"] for r in result.history[1:]]
        plain += plain_peft_loop(model, tokenizer, data, options)[1:]
    report = {
        "base": args.base,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_seq_len": args.seq,
        "ours_s_per_step": round(statistics.median(ours), 3),
        "plain_peft_s_per_step": round(statistics.median(plain), 3),
        "ratio": round(statistics.median(ours) / statistics.median(plain), 3),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()

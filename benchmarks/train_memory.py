"""Peak memory and step time of LoRA training: what bounds `mem distill`'s RSS.

    .venv/bin/python benchmarks/train_memory.py [--base qwen2.5-0.5b] [--steps 3]
        [--batch-size 4] [--seq-len 512]

Each variant trains the same LoRA on the same batches in a process of its own, so its peak
RSS (VmHWM) is its own:

- plain: the model's own forward(labels=...) loss (logits for every position and the whole
  vocabulary), activations kept: what a plain peft loop does;
- chunked: mem's loss (adapters/loss.py: the head on labelled positions only, in chunks);
- chunked+checkpointing: that, and activation checkpointing (the [lora] default);
- chunked+checkpointing+bf16: that, with the frozen base in bfloat16 (LoRA weights fp32), what
  `[lora] cpu_dtype = "auto"` picks on a CPU with native bf16. Its first-step loss (LoRA
  starts as a no-op, so that is the base's loss) is compared with fp32's;
- chunked+checkpointing+bf16+low-memory: that, with freed tensors of 4 MB and more handed
  back to the OS at once (`[lora] low_memory`, models/hardware.return_freed_memory), the
  [lora] defaults.

The examples have the shape of reader examples: a prompt with three retrieved sources
(~400 tokens) and a short cited answer, in Russian. Synthetic, so no ../shared is needed.
Reported: peak RSS, the RSS of the loaded base alone, median step seconds (first step
left out), and each variant's ratio to plain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
VARIANTS = (
    "plain",
    "chunked",
    "chunked+checkpointing",
    "chunked+checkpointing+bf16",
    "chunked+checkpointing+bf16+low-memory",
)


def examples(n: int):
    from mem.adapters.data import Example

    out = []
    for i in range(n):
        sources = "\n\n".join(
            f"[{k}] заметка-{i}-{k}.md\n"
            + " ".join(
                f"В записи {i}.{k} о поездке на Ладогу сказано, что ветер был северный, "
                f"маяк номер {k + i} виден с берега, а лодка вышла в {6 + k} утра."
                for _ in range(2)
            )
            for k in (1, 2, 3)
        )
        question = f"Когда вышла лодка в поездке {i}?"
        answer = f"Лодка вышла в {7 + i % 2} утра [2]."
        out.append(
            Example(
                (
                    {"role": "system", "content": "Отвечай по источникам и ссылайся на них [n]."},
                    {"role": "user", "content": f"Источники:\n{sources}\n\nВопрос: {question}"},
                    {"role": "assistant", "content": answer},
                )
            )
        )
    return out


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    """One variant in this process: load, train `steps` steps, report."""
    import torch

    from mem.adapters.base_model import converted_dir, load_base
    from mem.adapters.loss import answer_loss_sum
    from mem.adapters.train import LoraOptions, collate, encode_all, prepare_model, schedule
    from mem.models.hardware import return_freed_memory

    torch.manual_seed(0)
    if variant.endswith("low-memory"):
        return_freed_memory()
    dtype = "bfloat16" if "bf16" in variant else "float32"
    model, tokenizer = load_base(args.base, converted_dir(), dtype=dtype)
    base_rss = peak_rss_mb()
    options = LoraOptions(
        batch_size=args.batch_size,
        grad_accum=1,  # one batch per step, as the figures were measured
        max_seq_len=args.seq_len,
        max_steps=args.steps,
        gradient_checkpointing="checkpointing" in variant,
    )
    peft_model = prepare_model(model, options, quantized=False)
    data = encode_all(tokenizer, examples(args.batch_size * args.steps), options.max_seq_len)
    steps, batches = schedule(len(data), options)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate)
    peft_model.train()
    times, losses = [], []
    for step in range(steps):
        t0 = time.perf_counter()
        batch = collate([data[i] for i in batches[step]], tokenizer.pad_token_id)
        if variant == "plain":
            loss = peft_model(**batch).loss
        else:
            total, count = answer_loss_sum(peft_model, batch)
            loss = total / count
        loss.backward()
        losses.append(float(loss))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    tokens = sum(len(data[i].input_ids) for i in batches[0])
    return {
        "variant": variant,
        "peak_rss_mb": round(peak_rss_mb()),
        "base_loaded_rss_mb": round(base_rss),
        "step_s": round(statistics.median(times[1:] or times), 2),
        "tokens_per_batch": tokens,
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument(
        "--only", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="Variants to run."
    )
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # the child process
        print(json.dumps(run_variant(args.variant, args)))
        return
    rows = []
    for variant in args.only:
        command = [sys.executable, __file__, "--variant", variant, "--base", args.base]
        command += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
        command += ["--seq-len", str(args.seq_len)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{variant}: {rows[-1]}", file=sys.stderr)
    plain = rows[0]
    print(
        f"\nbase {args.base}, batch {args.batch_size}, {rows[0]['tokens_per_batch']} tokens/batch"
    )
    print(
        f"| variant | peak RSS MB | base loaded MB | step s | RSS / {rows[0]['variant']} "
        "| step / it | first-step loss |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['peak_rss_mb']} | {r['base_loaded_rss_mb']} | {r['step_s']} "
            f"| {r['peak_rss_mb'] / plain['peak_rss_mb']:.2f} | "
            f"{r['step_s'] / plain['step_s']:.2f} | {r['first_loss']} |"
        )


if __name__ == "__main__":
    main()

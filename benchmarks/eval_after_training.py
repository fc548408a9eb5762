"""Generation's memory before and after LoRA training in one process: where the evaluation
spikes of `mem distill` came from (the 1.5B's run peaked at 9.6-9.9 GB after training).

    .venv/bin/python benchmarks/eval_after_training.py fresh-first

Loads the 1.5B in bf16 with `[lora] low_memory`, answers 16 control questions (batch 8, 48
new tokens), trains 2 LoRA steps on reader-shaped examples, unloads the LoRA as
`train_lora` does, and answers the same questions again. RSS is sampled every 0.1 s; each
phase prints its peak. 2026-12-07, 2 cores: generation 3,646 MB before training, 7,618 MB
after it, with the same prompts; training itself 4,624 MB.

The cause: peft freezes the base (requires_grad False) and unload() leaves it so, and a
frozen bf16 model generates with about one more copy of its weights in memory, slower (also
with no training at all: freezing the weights alone, 3,684 -> 7,238 MB, and 8 questions took
20.1 s instead of 8.9 s; which torch kernel copies is not isolated). Since 2026-12-08
evaluation unfreezes them (models/hardware.unfreeze_cpu_weights): 3,633 MB before, 4,039 MB
after; training 4,625 MB.
"""

import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
peak = [0]


def rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def sampler() -> None:
    while True:
        peak[0] = max(peak[0], rss())
        time.sleep(0.1)


def mark(phase: str) -> None:
    print(phase, "peak MB", peak[0], "now MB", rss(), flush=True)
    peak[0] = rss()


def main() -> None:
    import torch
    from train_memory import examples

    from mem.adapters.base_model import converted_dir, load_base
    from mem.adapters.control import control_questions
    from mem.adapters.evaluate import EvalOptions, generate_answers
    from mem.adapters.loss import answer_loss_sum
    from mem.adapters.train import LoraOptions, collate, encode_all, prepare_model
    from mem.models.hardware import return_freed_memory

    threading.Thread(target=sampler, daemon=True).start()
    return_freed_memory()
    model, tok = load_base("qwen2.5-1.5b", converted_dir(), dtype="bfloat16")
    questions = [q.question for q in control_questions()][:16]
    options = EvalOptions(batch_size=8, max_new_tokens=48)
    if sys.argv[1:] == ["fresh-first"]:
        generate_answers(model, tok, questions, options)
        mark("generation before training")
    lora = LoraOptions(batch_size=4, max_seq_len=1280)
    peft_model = prepare_model(model, lora, quantized=False)
    data = encode_all(tok, examples(8), lora.max_seq_len)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    peft_model.train()
    for i in range(2):
        batch = collate(data[i * 4 : (i + 1) * 4], tok.pad_token_id)
        total, count = answer_loss_sum(peft_model, batch)
        (total / count).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    mark("training, 2 steps")
    peft_model.unload()  # as train_lora hands the base back
    model.config.use_cache = True
    if model.is_activation_checkpointing:
        model.activation_checkpointing_disable()
    generate_answers(model, tok, questions, options)
    mark("generation after training")


if __name__ == "__main__":
    main()

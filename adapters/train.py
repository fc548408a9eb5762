"""Train a LoRA adapter with peft: a short explicit loop, checkpoints, per-step metrics.

Why an explicit loop and not transformers.Trainer: the loop is ~60 lines we fully control —
what a checkpoint holds (adapter, optimizer, scheduler, RNG, step) and so exact resume, the
per-step metrics.jsonl, loss on assistant tokens only — and its step time is the plain peft
loop's by construction (benchmarks/train_speed.py measures it). Trainer would add its own
checkpoint layout, logging integrations and an accelerate dependency for nothing we need here.

CPU: fp32 LoRA. CUDA: QLoRA — a 4-bit NF4 base (bitsandbytes), bf16 compute, gradient
checkpointing, peft's prepare_model_for_kbit_training.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mem.adapters.data import IGNORE, Encoded, Example, encode
from mem.adapters.loss import answer_loss_sum
from mem.adapters.options import LoraOptions as LoraOptions
from mem.models.hardware import requires_grad_kept, resolve_cpu_dtype

log = logging.getLogger("mem.adapters")


@dataclass
class TrainResult:
    run_dir: Path
    adapter_dir: Path
    steps: int
    first_loss: float
    last_loss: float
    seconds: float
    resumed_from: int = 0
    device: str = "cpu"
    dtype: str = "float32"  # of the frozen base
    history: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "adapter_dir": str(self.adapter_dir),
            "steps": self.steps,
            "first_loss": round(self.first_loss, 4),
            "last_loss": round(self.last_loss, 4),
            "seconds": round(self.seconds, 1),
            "resumed_from": self.resumed_from,
            "device": self.device,
            "dtype": self.dtype,
        }


def _rss_mb() -> float | None:
    """This process's resident memory now (VmRSS), in MB; None where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cpu_dtype(options: LoraOptions) -> str:
    """ "bfloat16" or "float32": what the base model is loaded as for CPU training."""
    return resolve_cpu_dtype(options.cpu_dtype, "[lora] cpu_dtype")


def use_qlora(options: LoraOptions) -> bool:
    if options.qlora == "off":
        return False
    import torch

    return torch.cuda.is_available()


def lora_config(options: LoraOptions):
    from peft import LoraConfig

    # peft reads a plain string as one regular expression; config gives a list as "a,b".
    targets = options.target_modules
    modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
    return LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


def prepare_model(model, options: LoraOptions, quantized: bool):
    """Wrap a loaded base model with a fresh, trainable LoRA."""
    from peft import get_peft_model

    if quantized:
        # The QLoRA path (CUDA): norms to fp32, input grads on, gradient checkpointing.
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=options.gradient_checkpointing
        )
    elif options.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input gradients, so the frozen embeddings stay
        # frozen.
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
    model.config.use_cache = False
    return get_peft_model(model, lora_config(options))


# -- batches -------------------------------------------------------------------------------


def schedule(
    n_examples: int, options: LoraOptions, lengths: Sequence[int] | None = None
) -> tuple[int, list[list[int]]]:
    """(optimizer steps, the micro-batches of example indices in order).

    With `lengths` (tokens per example), each epoch's shuffled order is cut into windows of
    32 batches, sorted by length inside a window, batched, and the batches shuffled again:
    a batch then holds examples of similar length, so a 1,000-token reader example does not
    pad three 120-token questions to its length (padding is compute thrown away on a CPU).
    The order depends only on the seed and the epoch, so a resumed run sees the same batches.
    """
    per_epoch = math.ceil(n_examples / options.batch_size)
    if options.max_steps > 0:
        steps = options.max_steps
    else:
        steps = max(1, math.ceil(per_epoch * options.epochs / options.grad_accum))
    needed = steps * options.grad_accum
    batches: list[list[int]] = []
    epoch = 0
    while len(batches) < needed:
        rng = random.Random(options.seed * 1000 + epoch)
        order = list(range(n_examples))
        rng.shuffle(order)
        if lengths is not None:
            window = 32 * options.batch_size
            order = [
                i
                for start in range(0, n_examples, window)
                for i in sorted(order[start : start + window], key=lambda i: lengths[i])
            ]
        epoch_batches = [
            order[i : i + options.batch_size] for i in range(0, n_examples, options.batch_size)
        ]
        if lengths is not None:
            rng.shuffle(epoch_batches)
        batches += epoch_batches
        epoch += 1
    return steps, batches[:needed]


def collate(items: Sequence[Encoded], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e.labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _labelled(e: Encoded) -> int:
    """Next-token targets that carry a loss (the first label predicts nothing)."""
    return sum(t != IGNORE for t in e.labels[1:])


def encode_all(tokenizer, examples: Sequence[Example], max_len: int) -> list[Encoded]:
    encoded = [encode(tokenizer, e, max_len) for e in examples]
    # An example whose reply was cut away entirely teaches nothing; keep the rest.
    kept = [e for e in encoded if any(t != IGNORE for t in e.labels[1:])]
    if not kept:
        raise ValueError("no training example has assistant tokens within max_seq_len")
    return kept


# -- checkpoints ---------------------------------------------------------------------------


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("step-*"))


def _save_checkpoint(run_dir: Path, step: int, model, optimizer, scheduler, keep: int) -> None:
    import torch

    final = run_dir / "checkpoints" / f"step-{step:06d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        },
        tmp / "trainer_state.pt",
    )
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)  # a checkpoint folder without ".tmp" is always complete
    for old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _restore_checkpoint(checkpoint: Path, model, optimizer, scheduler) -> int:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(checkpoint / "adapter_model.safetensors"))
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    return int(state["step"])


# -- the loop ------------------------------------------------------------------------------


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))  # linear decay to 0

    return factor


def train_lora(
    model,
    tokenizer,
    train: Sequence[Example],
    options: LoraOptions,
    run_dir: Path,
    resume: bool = False,
    on_step: Callable[[dict], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train a LoRA on `model` (a base model, wrapped here) and save it to run_dir/adapter.

    Every `save_every` steps a checkpoint goes to run_dir/checkpoints/; with resume=True the
    newest one is loaded and training continues at the step after it. Each step appends
    {"step", "loss", "lr", "seconds", "tokens", "rss_mb"} to run_dir/metrics.jsonl.
    """
    import torch

    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    quantized = bool(getattr(model, "is_loaded_in_4bit", False))
    base_dtype = "4-bit NF4" if quantized else next(model.parameters()).dtype
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    # Hand the base model back as it came (no LoRA layers, its weights' requires_grad flags),
    # also after an interruption, so callers can load adapters onto it or train again
    # without reloading it.
    with requires_grad_kept(model):
        peft_model = prepare_model(model, options, quantized)
        try:
            steps, done, history, adapter_dir, device = _loop(
                peft_model, tokenizer, train, options, run_dir, resume, on_step, progress
            )
        finally:
            peft_model.unload()
            model.config.use_cache = True
            if model.is_activation_checkpointing:
                model.activation_checkpointing_disable()
    metrics_path = run_dir / "metrics.jsonl"
    all_steps = read_metrics(metrics_path)
    return TrainResult(
        run_dir=run_dir,
        adapter_dir=adapter_dir,
        steps=steps,
        first_loss=all_steps[0]["loss"] if all_steps else math.nan,
        last_loss=all_steps[-1]["loss"] if all_steps else math.nan,
        seconds=time.perf_counter() - started,
        resumed_from=done,
        device=str(device),
        dtype=str(base_dtype).removeprefix("torch."),
        history=history,
    )


def _loop(
    peft_model,
    tokenizer,
    train: Sequence[Example],
    options: LoraOptions,
    run_dir: Path,
    resume: bool,
    on_step: Callable[[dict], None] | None,
    progress: bool,
) -> tuple[int, int, list[dict], Path, object]:
    """The optimizer loop: (steps, resumed_from, this session's records, adapter, device)."""
    import torch

    device = next(peft_model.parameters()).device
    data = encode_all(tokenizer, train, options.max_seq_len)
    steps, batches = schedule(len(data), options, [len(e.input_ids) for e in data])

    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=options.learning_rate, weight_decay=options.weight_decay
    )
    warmup = math.ceil(steps * options.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(steps, warmup))

    done = 0
    found = checkpoints(run_dir) if resume else []
    if found:
        done = _restore_checkpoint(found[-1], peft_model, optimizer, scheduler)
        log.info("resuming %s at step %d", run_dir.name, done + 1)
    (run_dir / "train_options.json").write_text(json.dumps(asdict(options), indent=2) + "\n")

    metrics_path = run_dir / "metrics.jsonl"
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=done, desc="training", unit="step", leave=False)
    history: list[dict] = []
    peft_model.train()
    pad = tokenizer.pad_token_id
    for step in range(done, steps):
        t0 = time.perf_counter()
        micro = batches[step * options.grad_accum : (step + 1) * options.grad_accum]
        # Each micro-batch adds its summed loss over the step's label count, so the step's loss
        # is the mean over all its assistant tokens whatever the padding.
        total_tokens = max(1, sum(_labelled(data[i]) for b in micro for i in b))
        step_loss = 0.0
        for batch_ids in micro:
            batch = {k: v.to(device) for k, v in collate([data[i] for i in batch_ids], pad).items()}
            loss = answer_loss_sum(peft_model, batch)[0] / total_tokens
            loss.backward()
            step_loss += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, options.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record = {
            "step": step + 1,
            "loss": round(step_loss, 5),
            "lr": lr,
            "seconds": round(time.perf_counter() - t0, 3),
            "tokens": sum(len(data[i].input_ids) for b in micro for i in b),
            "rss_mb": _rss_mb(),  # memory as the run goes: what bounds `mem distill`
        }
        with metrics_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        history.append(record)
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}")
        if (step + 1) % options.save_every == 0 and step + 1 < steps:
            _save_checkpoint(
                run_dir, step + 1, peft_model, optimizer, scheduler, options.keep_checkpoints
            )
        if on_step:
            on_step(record)
    if bar:
        bar.close()

    adapter_dir = run_dir / "adapter"
    peft_model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    return steps, done, history, adapter_dir, device


def read_metrics(path: Path) -> list[dict]:
    """The per-step records; after a resume, the re-run steps replace the interrupted ones."""
    by_step: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def plot_training(run_dir: Path) -> Path | None:
    """run_dir/training.png: loss and learning rate per step."""
    records = read_metrics(run_dir / "metrics.jsonl")
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax_loss.plot(steps, [r["loss"] for r in records], marker="." if len(steps) < 50 else None)
    ax_loss.set_ylabel("training loss")
    ax_loss.grid(alpha=0.3)
    ax_lr.plot(steps, [r["lr"] for r in records], color="tab:orange")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("optimizer step")
    ax_lr.grid(alpha=0.3)
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    path = run_dir / "training.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

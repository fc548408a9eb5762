"""What the CPU we run on (not the one we were built on) can do, for choosing how to run a
model: LoRA training (`[lora] cpu_dtype`) and the ingest encoder (`[embedding] cpu_dtype`);
and how a long training process hands freed memory back (`[lora] low_memory`); the
requires_grad flags a bf16 model on a CPU wants when it generates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

CPU_DTYPES = ("auto", "float32", "bfloat16")


def cpu_has_bf16() -> bool:
    """Does this CPU multiply bf16 natively (AVX512-BF16 or AMX)?"""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            line = next((x for x in info if x.startswith("flags")), "")
    except OSError:
        return False
    return bool(set(line.partition(":")[2].split()) & {"avx512_bf16", "amx_bf16"})


def resolve_cpu_dtype(choice: str, setting: str) -> str:
    """ "bfloat16" or "float32" for a `cpu_dtype` setting: "auto" is bf16 where the CPU
    multiplies it natively, else fp32 (bf16 emulated on an AVX2 CPU ran about 5x slower than
    fp32). `setting` names the key in the error, e.g. "[lora] cpu_dtype"."""
    if choice not in CPU_DTYPES:
        raise ValueError(f"{setting} must be auto, float32 or bfloat16, not {choice!r}")
    if choice == "auto":
        return "bfloat16" if cpu_has_bf16() else "float32"
    return choice


# glibc's M_MMAP_THRESHOLD (malloc.h): allocations at least this large get pages of their own.
_M_MMAP_THRESHOLD = -3
LOW_MEMORY_THRESHOLD = 4 << 20


def return_freed_memory(threshold: int = LOW_MEMORY_THRESHOLD) -> bool:
    """Make glibc give every allocation of `threshold` bytes or more pages of its own, so a
    freed tensor goes back to the OS at once. By default glibc raises that threshold as big
    blocks are freed and then serves them from its heaps, where the holes stay ours: training
    the 1.5B on 2,550-token batches peaked at 7,810 MB so, 4,924 MB with 4 MB, at a step 25 %
    slower (benchmarks/train_memory.py). Process-wide; False where the C library is
    not glibc (nothing changed)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def unfreeze_cpu_weights(model) -> None:
    """Mark a CPU model's floating-point weights as requiring gradients before it generates
    or scores under no_grad/inference_mode, where nothing is recorded for them anyway.

    Measured with torch 2.13 and transformers 5.23 (2 cores, AMX): the 1.5B in bf16, frozen,
    answering 8 short questions peaked at 7,143 MB instead of 3,601 MB and took 20.1 s instead
    of 8.9 s; a forward pass over 4 x 600 tokens took 1.7 GB more. Which kernel copies is not
    isolated (single bf16 linear layers, frozen or not, cost the same), so this is a measured
    workaround (benchmarks/eval_after_training.py shows it after training). peft freezes the
    base when it wraps it for training or loads an adapter, so `mem distill`'s evaluation and
    `mem ask --adapter` met it every time.
    """
    for param in model.parameters():
        if param.device.type == "cpu" and param.is_floating_point():
            param.requires_grad_(True)


@contextmanager
def requires_grad_kept(model) -> Iterator[None]:
    """Give `model`'s weights back the requires_grad flags they had on entry (peft freezes a
    base when it wraps it or loads an adapter, and unload() leaves it frozen)."""
    flags = {param: param.requires_grad for param in model.parameters()}
    try:
        yield
    finally:
        for param, flag in flags.items():
            param.requires_grad_(flag)


@contextmanager
def unfrozen_cpu_weights(model) -> Iterator[None]:
    """unfreeze_cpu_weights for the duration of a generation or scoring pass: a model in the
    middle of training gets its frozen base back afterwards."""
    with requires_grad_kept(model):
        unfreeze_cpu_weights(model)
        yield

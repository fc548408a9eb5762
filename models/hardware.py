"""What the CPU we run on (not the one we were built on) can do, for choosing how to run a
model: LoRA training (`[lora] cpu_dtype`) and the ingest encoder (`[embedding] cpu_dtype`)."""

from __future__ import annotations

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

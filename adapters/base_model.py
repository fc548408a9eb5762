"""The base model a LoRA trains on: a packaged GGUF, a local folder, or (if allowed) a hub id.

A GGUF is read by transformers (dequantized: 20-60 s for SmolLM2, a few minutes for a 0.5B
model on 2 cores) and saved once as safetensors in the per-user models folder that every memory
home shares (`converted_dir()`), so every later load takes seconds. The copy is kept in the
dtype it is loaded in: a bf16 copy loads lazily (memory-mapped, nothing converted), while
loading an fp32 copy as bf16 reads the whole file and holds both (the 1.5B: a 10.5 GB peak
against 5.5 GB for the GGUF read straight into bf16, README).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mem.adapters.options import LoraOptions
from mem.models import PACKAGED_GGUF, PackagedModelError, models_dir, packaged_gguf

log = logging.getLogger("mem.adapters")


class BaseModelError(Exception):
    """The configured base model cannot be found or loaded."""


@dataclass(frozen=True)
class BaseModelSource:
    name: str  # as configured ("smollm2", a path, a hub id)
    path: str  # a folder with config.json + weights, or a hub id
    gguf_file: str | None = None  # set when `path` is the folder holding a .gguf


# `[distill] base_model = "auto"`: the answer model itself where this machine trains it in
# bf16 or 4-bit, else its 0.5B sibling (same family and tokenizer), whose fp32 training fits
# in 8 GB where the 1.5B's does not (README, "Base model").
AUTO = "auto"
AUTO_CAPABLE, AUTO_FALLBACK = "qwen2.5-1.5b", "qwen2.5-0.5b"


def resolve_base_model(name: str, lora: LoraOptions) -> str:
    """The base model a setting names: itself, or for "auto" the 1.5B where training runs on
    CUDA (QLoRA) or on a CPU with native bf16 (`[lora] cpu_dtype`), else the 0.5B."""
    if name != AUTO:
        return name
    from mem.adapters.train import cpu_dtype, use_qlora

    capable = use_qlora(lora) or cpu_dtype(lora) == "bfloat16"
    return AUTO_CAPABLE if capable else AUTO_FALLBACK


def converted_dir() -> Path:
    """Where the safetensors copies of GGUF base models are kept: beside the assembled GGUFs
    (`$MEM_MODELS_DIR`, else the user cache dir), shared by all memory homes."""
    return models_dir() / "transformers"


def slug(name: str) -> str:
    """A folder name for a model name or path."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[-60:] or "base"


def locate(name: str, allow_downloads: bool = False) -> BaseModelSource:
    """Where the weights of `name` are, without loading them."""
    if name in PACKAGED_GGUF:
        try:
            gguf = packaged_gguf(name)
        except PackagedModelError as exc:
            raise BaseModelError(f"base model: {exc}") from exc
        assert gguf is not None
        return BaseModelSource(name, str(gguf.parent), gguf.name)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return BaseModelSource(name, str(path.parent), path.name)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise BaseModelError(f"{path} has no config.json: not a transformers model folder")
        return BaseModelSource(name, str(path))
    if path.is_absolute() or name.startswith((".", "~")):
        raise BaseModelError(f"base model {name!r}: no such file or folder")
    if not allow_downloads:
        raise BaseModelError(
            f"base model {name!r} is neither a packaged model ({', '.join(PACKAGED_GGUF)}) nor a "
            "local folder; set [models] allow_downloads = true to fetch it from the hub"
        )
    return BaseModelSource(name, name)


def copy_dir(name: str, models_dir: Path, dtype: str = "float32") -> Path:
    """The folder of `name`'s copy in `dtype`: fp32 copies keep the plain name they always had."""
    folder = slug(name)
    return models_dir / (folder if dtype == "float32" else f"{folder}-{dtype}")


def cached_copy(
    name: str, models_dir: Path, allow_downloads: bool = False, dtype: str = "float32"
) -> Path | None:
    """The safetensors copy of a GGUF base model in `dtype` ("float32" or "bfloat16"),
    read straight from the GGUF into that dtype and written on first use.

    Returns None for models that need no copy (a local folder or hub id is loaded directly).
    """
    if dtype not in ("float32", "bfloat16"):
        raise BaseModelError(f"no {dtype!r} copies of base models: float32 or bfloat16")
    source = locate(name, allow_downloads)
    if source.gguf_file is None:
        return None
    target = copy_dir(name, models_dir, dtype)
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s safetensors in %s (once)", source.gguf_file, dtype, target)
    tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        source.path, gguf_file=source.gguf_file, dtype=getattr(torch, dtype)
    )
    _drop_quantization(model)
    # Written beside the target and renamed, so a crash never leaves a half-saved model.
    tmp = models_dir / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "SOURCE").write_text(f"{source.path}/{source.gguf_file}\n", encoding="utf-8")
    try:
        tmp.rename(target)
    except OSError:  # another process won the race; its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _drop_quantization(model) -> None:
    """A GGUF-loaded model is already dequantized; forget the quantizer so it can be
    saved and trained like any other model."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def model_path(
    name: str, models_dir: Path, allow_downloads: bool = False, dtype: str = "float32"
) -> str:
    """What from_pretrained should load for `name`: the copy in `dtype`, a folder or a hub id."""
    copy = cached_copy(name, models_dir, allow_downloads, dtype)
    return str(copy) if copy is not None else locate(name, allow_downloads).path


def load_tokenizer(
    name: str, models_dir: Path, allow_downloads: bool = False, dtype: str = "float32"
):
    """The tokenizer of `name` (from its copy in `dtype`: any copy holds the same one)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path(name, models_dir, allow_downloads, dtype))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise BaseModelError(f"base model {name!r} has no chat template: use an instruct model")
    return tokenizer


def load_base(
    name: str,
    models_dir: Path,
    allow_downloads: bool = False,
    quantize_4bit: bool = False,
    dtype: str = "float32",
):
    """(model, tokenizer) for training or inference.

    CPU: `dtype` ("float32", or "bfloat16" where the CPU has native bf16), from the copy in
    that dtype. quantize_4bit (CUDA only): the QLoRA recipe — NF4 weights with double
    quantization, bf16 compute — through bitsandbytes, from the bf16 copy.
    """
    from transformers import AutoModelForCausalLM

    copy_dtype = "bfloat16" if quantize_4bit else dtype
    path = model_path(name, models_dir, allow_downloads, copy_dtype)
    tokenizer = load_tokenizer(name, models_dir, allow_downloads, copy_dtype)
    if quantize_4bit:
        import torch
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            path, quantization_config=quant, dtype=torch.bfloat16, device_map={"": 0}
        )
    else:
        import torch

        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model, tokenizer

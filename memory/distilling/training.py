"""The LoRA stage for one memory home: settings from config.toml, paths, locks.

The work itself is in mem.adapters; this module only connects it to the Memory facade.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mem.memory.lock import exclusive, writer_lock

if TYPE_CHECKING:
    from mem.adapters.export import Exported
    from mem.adapters.pipeline import DistillResult, DistillSettings
    from mem.adapters.registry import Registry
    from mem.memory.config import Config
    from mem.memory.core import Memory


def core_base_model(config: Config) -> str:
    """The core-self base this machine trains: `[distill] base_model` ("" the default),
    "auto" resolved."""
    from mem.adapters.base_model import resolve_base_model
    from mem.distill.options import DistillOptions

    name = config.distill.base_model or DistillOptions.base_model
    return resolve_base_model(name, config.lora)


def distill_settings(
    memory: Memory, steps: int | None = None, epochs: float | None = None
) -> DistillSettings:
    """[lora] as configured, with `--steps` / `--epochs` from the command line if given."""
    from mem.adapters.base_model import converted_dir
    from mem.adapters.pipeline import DistillSettings

    lora = memory.config.lora
    if steps is not None:
        lora = dataclasses.replace(lora, max_steps=steps)
    if epochs is not None:
        lora = dataclasses.replace(lora, epochs=epochs, max_steps=0)
    return DistillSettings(
        base_model=core_base_model(memory.config),
        models_dir=converted_dir(),
        lora=lora,
        allow_downloads=memory.config.models.allow_downloads,
        rag=rag_messages(memory, lora.eval_rag_sources) if lora.eval_rag else None,
    )


def rag_messages(memory: Memory, k: int) -> Callable[[str], list[dict]]:
    """Question -> the messages `mem ask` sends (system prompt, k retrieved sources, question),
    for the RAG arms of the evaluation."""
    from mem.memory.answering.prompting import build_messages

    style = memory.config.llm.answer_style
    return lambda question: build_messages(question, memory.retrieve(question, k=k), style=style)


def distill(
    memory: Memory,
    dataset: str = "new",
    steps: int | None = None,
    epochs: float | None = None,
    domain: str | None = None,
    resume: bool = False,
    progress: bool = False,
) -> DistillResult:
    """Build (dataset="new") or take ("latest", an id, a path) a dataset, then train,
    evaluate, register and maybe promote an adapter. One distillation at a time per home.

    A domain's new dataset holds only material tagged `domain`; none is a NoTaggedMaterial
    (ValueError) naming the tag."""
    from mem.adapters.data import resolve_dataset
    from mem.adapters.pipeline import run_distill
    from mem.adapters.registry import CORE

    if domain == CORE:
        raise ValueError(f"{CORE} is the core adapter, not a domain: leave --domain out")
    name = domain or CORE
    with exclusive(memory.home, "distill", f"mem distill {name}"):
        if dataset == "new":
            # A domain learns from the material ingested with --tag <domain>, nothing else.
            with writer_lock(memory.home, "mem distill (dataset)"):
                folder = memory.build_dataset(progress=progress, tag=domain).path
        else:
            folder = resolve_dataset(memory.home / "datasets", dataset)
        return run_distill(
            folder,
            memory.home / "adapters",
            memory.home / "runs",
            distill_settings(memory, steps, epochs),
            name=name,
            resume=resume,
            progress=progress,
        )


def registry(memory: Memory, name: str | None = None) -> Registry:
    from mem.adapters.registry import CORE, Registry

    return Registry(memory.home / "adapters", name or CORE)


def export_adapter(
    memory: Memory, version: str, fmt: str, out: Path, name: str | None = None
) -> Exported:
    from mem.adapters.base_model import converted_dir, load_base, load_tokenizer, model_path
    from mem.adapters.export import FORMATS, ExportError, export

    chosen = registry(memory, name).get(version)
    base = chosen.manifest["base_model"]
    models_dir = converted_dir()
    allow = memory.config.models.allow_downloads
    base_dir = model_path(base, models_dir, allow)
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    model, tokenizer = None, None
    if FORMATS[fmt].needs_model:
        model, tokenizer = load_base(base, models_dir, allow)
    elif FORMATS[fmt].needs_tokenizer:
        tokenizer = load_tokenizer(base, models_dir, allow)
    return export(chosen, fmt, out, base_dir, tokenizer, model)

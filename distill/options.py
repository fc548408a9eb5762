"""DistillOptions: the [distill] section of config.toml, parsed straight into this package's
options and passed down unchanged (selection, example generation, dataset hygiene)."""

from __future__ import annotations

from dataclasses import dataclass

TEACHERS = ("offline", "llm")


@dataclass(frozen=True)
class DistillOptions:
    # Selection (distill/selection.py): novelty and importance to qualify, and the share of
    # older high-value memory mixed back in so the adapter keeps it.
    threshold: float = 0.08
    min_importance: float = 0.3
    replay_share: float = 0.15
    # Who writes the examples (distill/generate.py): "offline" or "llm" (the [llm] backend).
    teacher: str = "llm"
    teacher_budget_min: float = 120.0  # per build; then the offline generator; 0 = no limit
    qa_pairs: int = 3  # the LLM teacher's Q&A pairs per chunk, each about its own fact
    other_language_qa: int = 0  # the LLM teacher's Q&A pairs per chunk in the other language
    # The model the LoRA trains on; its tokenizer measures example lengths. "auto": the 1.5B
    # answer model where training runs in bf16 or on CUDA, else the 0.5B (adapters/base_model).
    base_model: str = "auto"
    max_tokens: int = 1280
    # Reader (RAFT-style) examples: a question with retrieved sources, answered with its [n].
    reader_examples: bool = True
    reader_sources: int = 2
    reader_window_words: int = 64  # each source cut to this many words around the fact; 0 = whole
    reader_negative_share: float = 0.2
    # Hygiene and the split (distill/hygiene.py).
    redact: bool = True
    validation_share: float = 0.1
    heldout_share: float = 0.1
    seed: int = 0

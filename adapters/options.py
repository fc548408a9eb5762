"""LoraOptions: the [lora] section of config.toml, parsed straight into these options and
passed down unchanged: how the core-self adapter is trained, judged and promoted."""

from __future__ import annotations

from dataclasses import dataclass

from mem.adapters.evaluate import EvalOptions

PRIMARY_ARMS = ("rag", "closed-book")


@dataclass(frozen=True)
class LoraOptions:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # "all-linear": every linear layer of the transformer blocks (not the output head).
    target_modules: str = "all-linear"
    learning_rate: float = 2e-4
    epochs: float = 3.0
    max_steps: int = 0  # > 0 overrides epochs
    # 2 x 2: the step of 4 examples, with half the activations in memory at once.
    batch_size: int = 2
    grad_accum: int = 2
    # Room for a reader example: the system prompt, three retrieved chunks and the answer.
    max_seq_len: int = 1280
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    save_every: int = 50  # optimizer steps between checkpoints
    keep_checkpoints: int = 2
    seed: int = 0
    # "auto": QLoRA when CUDA is available, plain LoRA otherwise; "off": never quantize.
    qlora: str = "auto"
    # The frozen base's dtype on CPU (the LoRA weights stay fp32): "auto" = bfloat16 where the
    # CPU multiplies bf16 natively (avx512_bf16 / amx_bf16: about 4x the fp32 matmul speed),
    # else float32 (emulated bf16 is slower than fp32).
    cpu_dtype: str = "auto"
    # Recompute each layer's activations in the backward pass instead of keeping them: about
    # a third more compute for a fraction of the memory (CPU and CUDA).
    gradient_checkpointing: bool = True
    # Hand freed tensors (4 MB and up) back to the OS at once (glibc): the 1.5B's training
    # peak 7.8 -> 4.9 GB on 2,550-token batches, for steps about 25 % slower.
    low_memory: bool = True
    # Promotion (adapters/evaluate.py): the metric the new adapter must win on, by min_gain,
    # and on which answers: "rag" (with retrieved sources, as `mem ask --adapter` answers;
    # closed-book when eval_rag is off) or "closed-book".
    primary_metric: str = "token_f1"
    primary_arm: str = "rag"
    min_gain: float = 0.0
    eval_questions: int = 100
    eval_max_new_tokens: int = 48
    # The base+rag and adapter+rag arms, from eval_rag_sources retrieved chunks.
    eval_rag: bool = True
    eval_rag_sources: int = 3
    # The forgetting check: "" the built-in set, "none" off, or a JSONL path; the
    # control_recall points the adapter may lose against the base.
    control_set: str = ""
    max_control_drop: float = 0.1
    # Self-rehearsal (adapters/rehearsal.py): this many general prompts, answered by the base
    # model itself, are trained on with the dataset; 0 = none (the default: it helped in
    # Russian and hurt in English on XQuAD, README).
    rehearsal: int = 0

    def evaluation(self) -> EvalOptions:
        """How the held-out questions are answered and scored."""
        return EvalOptions(
            max_seq_len=self.max_seq_len,
            max_new_tokens=self.eval_max_new_tokens,
            max_questions=self.eval_questions,
        )

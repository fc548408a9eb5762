"""The loss on assistant tokens, without the full (batch x length x vocabulary) logits.

A causal LM's own `forward(labels=...)` computes logits for every position, then the loss.
With Qwen2.5's 151,936-token vocabulary that is 4 x 512 x 151,936 fp32 numbers (1.2 GB) per
micro-batch, held again for the backward pass, while only the assistant tokens (often a
fifth of the positions) carry a label. Here the decoder runs once, the head is applied to
the labelled positions only, in chunks, and each chunk's logits are recomputed in the
backward pass instead of kept (activation checkpointing), so at most one chunk's logits
exist at a time. The result equals the model's own loss (tests/test_loss.py checks it).
"""

from __future__ import annotations

from mem.adapters.data import IGNORE

# Labelled positions whose logits exist at once: 256 x 151,936 x 4 bytes = 156 MB (with
# their bf16 original and the softmax, a few times that). From 1024, the 0.5B's training
# steps peaked at 6,112 MB instead of 6,626 MB (XQuAD ru, 21 steps, same losses).
CHUNK_TOKENS = 256


def _plain_head(causal) -> bool:
    """Models whose logits are the output embedding of the last hidden state, nothing more
    (Qwen2, Llama, SmolLM2, Mistral). Gemma's soft-capping or Cohere's logit scale would be
    skipped by the chunked path, so such models use their own forward."""
    config = causal.config
    return (
        getattr(config, "final_logit_softcapping", None) is None
        and getattr(config, "logit_scale", None) is None
        and hasattr(causal, "get_decoder")
        and causal.get_output_embeddings() is not None
    )


def _head_loss(head, states, targets):
    import torch.nn.functional as F

    return F.cross_entropy(head(states).float(), targets, reduction="sum")


def answer_loss_sum(model, batch: dict, chunk_tokens: int = CHUNK_TOKENS):
    """(summed cross-entropy over the labelled next tokens, how many there are).

    `model` is a transformers causal LM or a peft model around one; `batch` holds
    input_ids, attention_mask and labels (IGNORE where no loss is wanted), as
    `train.collate` builds it. Differentiable when gradients are on.
    """
    import torch

    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    count = int(keep.sum())
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not _plain_head(causal):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        flat = logits.logits[:, :-1].float()
        total = torch.nn.functional.cross_entropy(
            flat.reshape(-1, flat.size(-1)),
            targets.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        return total, count
    hidden = causal.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state
    states = hidden[:, :-1][keep]
    wanted = targets[keep]
    head = causal.get_output_embeddings()
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, count, chunk_tokens):
        part = slice(start, start + chunk_tokens)
        if torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            total = total + checkpoint(
                _head_loss, head, states[part], wanted[part], use_reentrant=False
            )
        else:
            total = total + _head_loss(head, states[part], wanted[part])
    return total, count

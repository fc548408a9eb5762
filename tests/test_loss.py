"""The chunked assistant-token loss is the model's own loss, value and gradient."""

from __future__ import annotations

import pytest

from mem.adapters.data import IGNORE


@pytest.fixture
def lora_model(tiny_llama):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(base, config)


def _batch(vocab: int):
    import torch

    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, vocab, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # a right-padded row, as collate builds them
    labels = ids.clone()
    labels[:, :5] = IGNORE  # the prompt carries no loss
    labels[1, 8:] = IGNORE
    labels[2, 7] = IGNORE  # a hole in the middle of an answer
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model) -> list:
    return [p.grad.clone() for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("chunk_tokens", [1024, 4])
def test_chunked_loss_equals_the_models_own_loss_and_gradients(lora_model, chunk_tokens):
    import torch

    from mem.adapters.loss import answer_loss_sum

    batch = _batch(lora_model.config.vocab_size)
    own = lora_model(**batch).loss  # transformers: mean over labelled next tokens
    own.backward()
    expected = _grads(lora_model)
    lora_model.zero_grad()

    total, count = answer_loss_sum(lora_model, batch, chunk_tokens=chunk_tokens)
    assert count == int((batch["labels"][:, 1:] != IGNORE).sum()) == 3 * 6 - 3 - 1
    (total / count).backward()
    assert torch.allclose(total / count, own, atol=1e-5)
    for got, want in zip(_grads(lora_model), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    assert any(float(g.abs().sum()) > 0 for g in expected)


def test_no_grad_path_gives_the_same_sum(lora_model):
    import torch

    from mem.adapters.loss import answer_loss_sum

    batch = _batch(lora_model.config.vocab_size)
    with_grad, _ = answer_loss_sum(lora_model, batch, chunk_tokens=5)
    with torch.no_grad():
        without, _ = answer_loss_sum(lora_model, batch, chunk_tokens=5)
    assert not without.requires_grad
    assert torch.allclose(with_grad.detach(), without, atol=1e-5)

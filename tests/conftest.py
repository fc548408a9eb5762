from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

# The suite runs offline, as users do by default.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A private copy of the shipped examples, safe to modify."""
    target = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", target)
    return target


@pytest.fixture(scope="session")
def xquad_slice() -> list[dict]:
    return json.loads((FIXTURES / "xquad" / "slice.json").read_text(encoding="utf-8"))["paragraphs"]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A real (random, tiny) Llama causal LM folder with a word-level tokenizer and a chat
    template: the shape of a base model, small enough to load in a second."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["<unk>", "<pad>", "<eos>"]
    corpus = ["user: Hello memory", "assistant: a wheel is a built package archive"]
    words.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=special))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model_dir = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir

"""Read a built dataset folder and turn chat examples into token ids with a loss mask.

The folder is what `distill` writes under <home>/datasets/<id>/:

    train.jsonl, validation.jsonl   {"messages": [{"role", "content"}...], "source", "kind"}
                                    (an assistant message with "training": false is context,
                                    not learned; Axolotl reads the same flag when told
                                    `message_field_training: training`)
    heldout_questions.jsonl         {"question", "answer", "source", "kind"}
    manifest.json
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IGNORE = -100  # the label torch's cross-entropy skips
ROLES = {"system", "user", "assistant"}
TRAINING = "training"  # a message's flag: false = shown to the model, never a label


def learned(message: dict) -> bool:
    """Whether training puts labels on this message: an assistant reply not flagged off."""
    return message["role"] == "assistant" and message.get(TRAINING, True) is not False


class DatasetError(Exception):
    """A dataset folder is missing or malformed."""


@dataclass(frozen=True)
class Example:
    messages: tuple[dict, ...]
    source: str = ""
    kind: str = ""


@dataclass(frozen=True)
class HeldoutQuestion:
    question: str
    answer: str
    source: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE outside the assistant turns


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{n}: not JSON ({error})") from error
    return rows


def load_examples(folder: Path, split: str = "train") -> list[Example]:
    """The chat examples of one split ("train" or "validation") of a dataset folder."""
    path = Path(folder) / f"{split}.jsonl"
    examples = []
    for n, row in enumerate(_jsonl(path), start=1):
        messages = row.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or any(
                m.get("role") not in ROLES or not isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            raise DatasetError(f"{path}:{n}: 'messages' must be a list of {{role, content}}")
        if not any(learned(m) for m in messages):
            raise DatasetError(f"{path}:{n}: no assistant message to learn from")
        examples.append(
            Example(tuple(messages), str(row.get("source", "")), str(row.get("kind", "")))
        )
    return examples


def load_heldout(folder: Path) -> list[HeldoutQuestion]:
    path = Path(folder) / "heldout_questions.jsonl"
    return [
        HeldoutQuestion(
            r["question"], r["answer"], str(r.get("source", "")), str(r.get("kind", ""))
        )
        for r in _jsonl(path)
    ]


def dataset_hash(folder: Path) -> str:
    """sha256 over the files training and evaluation read, in a fixed order."""
    digest = hashlib.sha256()
    for name in ("train.jsonl", "validation.jsonl", "heldout_questions.jsonl"):
        path = Path(folder) / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def resolve_dataset(datasets_dir: Path, which: str) -> Path:
    """A dataset folder from a path, a dataset id under datasets_dir, or "latest"."""
    if which == "latest":
        built = sorted(
            p for p in datasets_dir.glob("*") if p.is_dir() and not p.name.startswith(".")
        )
        if not built:
            raise DatasetError(f"no dataset in {datasets_dir}: run `mem export-dataset` first")
        return built[-1]  # ids start with a UTC timestamp, so the last sorts newest
    for candidate in (Path(which).expanduser(), datasets_dir / which):
        if (candidate / "train.jsonl").exists():
            return candidate
    raise DatasetError(f"{which}: not a dataset folder (no train.jsonl)")


def _render(tokenizer, messages: Sequence[dict], generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=generation_prompt
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode(tokenizer, example: Example, max_len: int) -> Encoded:
    """Token ids of the whole conversation in the model's chat template, with labels on the
    assistant replies only (their end-of-turn marker included, so the model learns to stop),
    except those flagged `"training": false` (the prompt's worked example).

    Each assistant span is found by rendering the conversation up to it: the prefix with a
    generation prompt ends where the reply starts, the prefix with the reply ends after it.
    """
    messages = list(example.messages)
    ids = _render(tokenizer, messages, generation_prompt=False)
    labels = [IGNORE] * len(ids)
    for n, message in enumerate(messages):
        if not learned(message):
            continue
        start = len(_render(tokenizer, messages[:n], generation_prompt=True))
        end = len(_render(tokenizer, messages[: n + 1], generation_prompt=False))
        labels[start:end] = ids[start:end]
    return Encoded(ids[:max_len], labels[:max_len])


def prompt_ids(tokenizer, question: str | Sequence[dict]) -> list[int]:
    """A question (or a whole message list) as the model sees it at answer time: the chat
    template, generation prompt on."""
    messages = [{"role": "user", "content": question}] if isinstance(question, str) else question
    return _render(tokenizer, messages, generation_prompt=True)

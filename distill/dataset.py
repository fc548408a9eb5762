"""Build an SFT dataset from selected chunks into <home>/datasets/<id>/.

    train.jsonl, validation.jsonl   {"messages": [...], "source": chunk id, "kind": ...}
    heldout_questions.jsonl         {"question", "answer", "source", "kind"}
    manifest.json                   counts, sources, file hashes, settings

The LoRA stage reads the folder as is; `mem export-dataset` converts it for other tools.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mem.corpus.records import format_utc
from mem.distill.export import write_jsonl
from mem.distill.generate import Generator
from mem.distill.hygiene import (
    TokenCounter,
    deduplicate,
    limit_length,
    redact_examples,
    split_by_source,
)
from mem.distill.options import DistillOptions
from mem.distill.records import Example, SourceItem

# Reader examples are made from these kinds: a question a person could ask, and its answer,
# if that answer is short enough to be the answer `mem ask` asks for (its words, then [n]).
# The offline generator's clozes are answered by their whole sentence (30-40 words in XQuAD):
# as reader examples they taught the opposite of a short answer.
READER_FROM = ("qa",)
READER_MAX_ANSWER_WORDS = 20


@dataclass
class BuiltDataset:
    dataset_id: str
    path: Path
    manifest: dict

    def to_json(self) -> dict:
        return {"dataset_id": self.dataset_id, "path": str(self.path), **self.manifest["counts"]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_dataset(
    items: Sequence[SourceItem],
    generator: Generator,
    counter: TokenCounter,
    options: DistillOptions,
    datasets_dir: Path,
    extra_manifest: dict | None = None,
    progress: Callable[[int], None] | None = None,
    reader: Callable[[Example], list[Example]] | None = None,
) -> BuiltDataset:
    """Generate, clean and split the examples of `items` and write them as a dataset folder.

    `reader` turns a question/answer example into reader examples (the question with
    retrieved sources, answered with a citation). It runs after the split, on the questions
    left in training and validation, so a held-out question is never trained on in any form.
    """
    started = time.perf_counter()
    examples: list[Example] = []
    for item in items:
        examples += generator.examples(item)
        if progress:
            progress(1)
    generated = Counter(e.kind for e in examples)
    redactions = redact_examples(examples) if options.redact else Counter()
    examples, length_counts = limit_length(examples, counter, options.max_tokens)
    examples, duplicate_counts = deduplicate(examples)
    split = split_by_source(examples, options.validation_share, options.heldout_share, options.seed)
    reader_counts: dict[str, int] = {}
    if reader is not None:
        for name, part in (("train", split.train), ("validation", split.validation)):
            made = [
                r
                for e in part
                if e.kind in READER_FROM and len(e.answer.split()) <= READER_MAX_ANSWER_WORDS
                for r in reader(e)
            ]
            if options.redact:  # retrieved sources are raw chunk text: redacted like the rest
                redactions.update(redact_examples(made))
            answers = {id(r): r.answer for r in made}
            fitting, _ = limit_length(made, counter, options.max_tokens)
            # A reader answer cut short would lose its citation: such an example is dropped.
            fitting = [r for r in fitting if r.answer == answers[id(r)]]
            reader_counts[f"reader_{name}"] = len(fitting)
            reader_counts[f"reader_{name}_too_long"] = len(made) - len(fitting)
            part.extend(fitting)

    created = datetime.now(UTC)
    digest = hashlib.sha256()
    for example in split.train + split.validation:
        digest.update(json.dumps(example.to_json(), ensure_ascii=False).encode())
    dataset_id = f"{created:%Y%m%dT%H%M%SZ}-{digest.hexdigest()[:8]}"
    n = 1
    while (datasets_dir / dataset_id).exists():  # the same set built twice in one second
        n += 1
        dataset_id = f"{created:%Y%m%dT%H%M%SZ}-{digest.hexdigest()[:8]}-{n}"
    folder = datasets_dir / dataset_id
    tmp = datasets_dir / f".{dataset_id}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    write_jsonl(tmp / "train.jsonl", (e.to_json() for e in split.train))
    write_jsonl(tmp / "validation.jsonl", (e.to_json() for e in split.validation))
    write_jsonl(tmp / "heldout_questions.jsonl", split.heldout)

    in_validation = {e.group for e in split.validation}
    roles = Counter(item.role for item in items)
    manifest = {
        "dataset_id": dataset_id,
        "created_at": format_utc(created),
        "generator": generator.name,
        **({"teacher": generator.report()} if hasattr(generator, "report") else {}),
        "tokenizer": counter.name,
        "tokens_exact": counter.exact,
        "settings": asdict(options),
        "counts": {
            "items": len(items),
            "fresh_items": roles["fresh"],
            "replay_items": roles["replay"],
            "generated": dict(generated),
            "train": len(split.train),
            "validation": len(split.validation),
            "heldout_questions": len(split.heldout),
            "train_by_kind": dict(Counter(e.kind for e in split.train)),
            "redactions": dict(redactions),
            **length_counts,
            **duplicate_counts,
            **reader_counts,
        },
        "sources": [
            {
                "chunk_id": item.chunk_id,
                "source": item.source,
                "title": item.title,
                "locator": item.locator,
                "role": item.role,
                "split": "validation" if item.group in in_validation else "train",
            }
            for item in items
        ],
        "files": {
            name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in ("train.jsonl", "validation.jsonl", "heldout_questions.jsonl")
        },
        "seconds": round(time.perf_counter() - started, 2),
        **(extra_manifest or {}),
    }
    (tmp / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    # The folder appears whole or not at all: the LoRA stage may be watching datasets/.
    tmp.rename(folder)
    return BuiltDataset(dataset_id, folder, manifest)

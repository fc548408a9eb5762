"""Export a built dataset in the formats training tools read.

alpaca   {"instruction","input","output","system","history"}      LLaMA-Factory (default format)
sharegpt {"conversations":[{"from","value"}],"system"}            LLaMA-Factory "sharegpt"
openai   {"messages":[{"role","content"}]}                        TRL SFTTrainer, Axolotl,
                                                                  LLaMA-Factory (sharegpt + tags)
Each gets a dataset_info.json entry LLaMA-Factory reads as is.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "validation")

_SHAREGPT_ROLE = {"user": "human", "assistant": "gpt"}


def _system(messages: list[dict]) -> tuple[str, list[dict]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return "", messages


def to_alpaca(example: dict) -> dict:
    system, turns = _system(example["messages"])
    pairs = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 1, 2)]
    (instruction, output), history = pairs[-1], pairs[:-1]
    return {
        "instruction": instruction,
        "input": "",
        "output": output,
        "system": system,
        "history": history,
        "source": example["source"],
        "kind": example["kind"],
    }


def to_sharegpt(example: dict) -> dict:
    system, turns = _system(example["messages"])
    return {
        "conversations": [
            {"from": _SHAREGPT_ROLE[m["role"]], "value": m["content"]} for m in turns
        ],
        "system": system,
        "source": example["source"],
        "kind": example["kind"],
    }


def to_openai(example: dict) -> dict:
    return {"messages": example["messages"], "source": example["source"], "kind": example["kind"]}


_OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}


@dataclass(frozen=True)
class DatasetFormat:
    """One value of `mem export-dataset --format`: what reads it, the row converter, and the
    LLaMA-Factory dataset_info.json entry (minus file_name) that describes its columns."""

    help: str
    convert: Callable[[dict], dict]
    dataset_info: dict


# The one list of dataset formats: export_dataset writes from it, the CLI offers its names.
FORMATS: dict[str, DatasetFormat] = {
    "alpaca": DatasetFormat(
        "instruction/input/output/history rows (LLaMA-Factory's default)",
        to_alpaca,
        {
            "columns": {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "system": "system",
                "history": "history",
            }
        },
    ),
    "sharegpt": DatasetFormat(
        "conversations of from/value turns (LLaMA-Factory sharegpt)",
        to_sharegpt,
        {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}},
    ),
    "openai": DatasetFormat(
        "messages of role/content (TRL SFTTrainer, Axolotl, Unsloth, LLaMA-Factory)",
        to_openai,
        {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": _OPENAI_TAGS},
    ),
}


def dataset_info(fmt: str, files: dict[str, str]) -> dict:
    """LLaMA-Factory's dataset_info.json entries, one per split file."""
    spec = FORMATS[fmt].dataset_info
    return {name: {"file_name": file, **spec} for name, file in files.items()}


def read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def export_dataset(dataset_dir: Path, fmt: str, out: Path, name: str = "mem") -> dict:
    """Write <name>_train.jsonl, <name>_validation.jsonl and dataset_info.json into `out`
    (merging with an existing dataset_info.json), plus the manifest and held-out questions."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    out.mkdir(parents=True, exist_ok=True)
    files, counts = {}, {}
    for split in SPLITS:
        file = f"{name}_{split}.jsonl"
        counts[split] = write_jsonl(
            out / file,
            (FORMATS[fmt].convert(row) for row in read_jsonl(dataset_dir / f"{split}.jsonl")),
        )
        files[f"{name}_{split}"] = file
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info.update(dataset_info(fmt, files))
    info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for extra in ("manifest.json", "heldout_questions.jsonl"):
        shutil.copyfile(dataset_dir / extra, out / extra)
    return {"format": fmt, "out": str(out), "files": files, "counts": counts}

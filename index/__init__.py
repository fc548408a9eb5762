"""Embeddings, the Chroma collection, the lexical index, hybrid search and rerank."""

from mem.index.hybrid import Hit
from mem.index.store import Index, IndexSettings, ReconcileReport

__all__ = ["Hit", "Index", "IndexSettings", "ReconcileReport"]

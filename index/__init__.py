"""Embeddings, the Chroma collection, the lexical index, hybrid search and rerank.

The names are loaded on first use (PEP 562): config.toml's sections are this package's options
(index/options.py), and reading a config must not import numpy and Chroma.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_HOMES = {
    "Hit": "hybrid",
    "EmbeddingOptions": "options",
    "IndexOptions": "options",
    "RetrievalOptions": "options",
    "Index": "store",
    "ReconcileReport": "store",
}


def __getattr__(name: str):
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f"mem.index.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'mem.index' has no attribute {name!r}")

"""The SQLite source of truth: documents, chunks, conversations, turns, scores, runs."""

from mem.corpus.records import Chunk, Document
from mem.corpus.store import Corpus, CorpusBusyError

__all__ = ["Chunk", "Corpus", "CorpusBusyError", "Document"]

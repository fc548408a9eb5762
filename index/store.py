"""The Index facade: keeps Chroma and the lexical index in step and searches both."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mem.corpus.crashpoints import checkpoint
from mem.corpus.language import detect_language
from mem.corpus.records import Chunk
from mem.corpus.text import split_sentences as corpus_sentences
from mem.index.cache import EmbeddingCache
from mem.index.embedders import Embedder, load_embedder
from mem.index.hybrid import Hit, fuse
from mem.index.lexical import LexicalIndex
from mem.index.options import EmbeddingOptions, RetrievalOptions
from mem.index.vectors import ChromaServer, VectorStore

# Where an index lives in a memory home, relative to it (doctor and backup use these too).
INDEX_DIR = "index"
LEXICAL_DB = f"{INDEX_DIR}/lexical.db"
EMBEDDING_CACHE_DB = f"{INDEX_DIR}/embeddings.db"
CHROMA_DIR = "chroma"
CHROMA_DB = f"{CHROMA_DIR}/chroma.sqlite3"  # Chroma's own SQLite file in its folder

# Shorter sentences say too little to search by.
SENTENCE_MIN_WORDS = 4


def split_sentences(text: str) -> list[str]:
    """The sentences of a chunk that may get their own vector (at least four words each)."""
    return corpus_sentences(text, SENTENCE_MIN_WORDS)


def chunk_sentences(chunk: Chunk, min_chunk_words: int = 0) -> list[tuple[str, str]]:
    """(sentence id, sentence) for each sentence vector of a chunk; none when it has fewer
    than two sentences, since the chunk's own vector already is that sentence's, or fewer
    than `min_chunk_words` words (see RetrievalOptions.sentence_min_words)."""
    if min_chunk_words and len(chunk.text.split()) < min_chunk_words:
        return []
    sentences = split_sentences(chunk.text)
    if len(sentences) < 2:
        return []
    return [(f"{chunk.chunk_id}:{n}", sentence) for n, sentence in enumerate(sentences)]


def pooling_pieces(chunk: Chunk) -> list[str]:
    """What a pooled chunk vector is made of: its context line and every sentence (short ones
    too, so that no text is left out of the mean). A one-sentence chunk is its own piece."""
    context = chunk.meta.get("context", "")
    return ([context] if context else []) + (corpus_sentences(chunk.text) or [chunk.text])


def pool(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of unit vectors, normalised again (mean pooling over pieces)."""
    mean = np.asarray(weights, dtype=np.float32) @ vectors
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def open_vector_stores(
    home: Path, model: str, server: ChromaServer | None, sentence_vectors: bool = True
) -> dict[str, VectorStore]:
    """The vector stores of an index by kind ("sentences", "chunks"): on `server` when there
    is one, else embedded in <home>/chroma."""
    kinds = ("sentences", "chunks") if sentence_vectors else ("chunks",)
    return {kind: VectorStore(home / CHROMA_DIR, model, kind=kind, server=server) for kind in kinds}


@dataclass
class ReconcileReport:
    added: int = 0
    removed: int = 0
    missing_ids: list[str] = field(default_factory=list)


def embed_text(chunk: Chunk) -> str:
    """What the models see: the chunk plus its context (heading path, conversation title)."""
    context = chunk.meta.get("context", "")
    return f"{context}\n{chunk.text}" if context else chunk.text


def _lexical_hits(
    job: Future[list[tuple[str, float, str]]] | None, languages: dict[str, str]
) -> dict[str, float]:
    """BM25's hits once its search is done, {chunk_id: score}; notes each one's language in
    `languages` where nothing else has."""
    hits: dict[str, float] = {}
    for chunk_id, score, language in job.result() if job else ():
        hits[chunk_id] = score
        languages.setdefault(chunk_id, language)
    return hits


class Index:
    def __init__(
        self,
        home: Path,
        embedding: EmbeddingOptions | None = None,
        retrieval: RetrievalOptions | None = None,
        server: ChromaServer | None = None,
    ) -> None:
        """[embedding] and [retrieval] as parsed, and the `chroma run` server ([index]) if the
        vectors live on one. `settings` (the [retrieval] options) may be replaced later, e.g.
        by benchmarks comparing fusion settings on one index."""
        self.embedding = embedding or EmbeddingOptions()
        self.settings = retrieval or RetrievalOptions()
        (home / INDEX_DIR).mkdir(parents=True, exist_ok=True)
        self._home = home
        model = self.embedding.model
        stores = open_vector_stores(home, model, server, self.settings.sentence_vectors)
        self.vectors = stores["chunks"]
        self.sentences = stores.get("sentences")
        self.lexical = LexicalIndex(home / LEXICAL_DB)
        self._cache = EmbeddingCache(home / EMBEDDING_CACHE_DB, model)
        self._embedder: Embedder | None = None
        self._search_threads: ThreadPoolExecutor | None = None
        self._last_query: tuple[str, np.ndarray] | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.embedding)
        return self._embedder

    @property
    def _threads(self) -> ThreadPoolExecutor:
        if self._search_threads is None:
            self._search_threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="search")
        return self._search_threads

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._cache.embed(texts, self.embedder.embed_passages)

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Index chunks (upsert): embed them (and their sentences), then both indexes."""
        if not chunks:
            return
        texts = [embed_text(c) for c in chunks]
        languages = [detect_language(c.text) for c in chunks]
        ids = [c.chunk_id for c in chunks]
        sentence_rows = self._sentence_rows(chunks, languages)
        vectors, sentence_vectors = self._embed_chunks(chunks, texts, sentence_rows)
        checkpoint("index:embedded")
        if self.sentences is not None:
            # Sentences first: a chunk counts as indexed once its own vector is in, and by
            # then its sentences are too, so a crash in between is repaired by reconcile.
            # A chunk indexed before (an edited file keeps its unchanged chunks' ids) loses
            # its own vector first, or a crash after its sentences were deleted would leave
            # it looking complete without them.
            present = set(languages)
            self.vectors.delete(ids, present)
            checkpoint("index:vectors-deleted")
            self.sentences.delete_where_chunk(ids, present)
            checkpoint("index:sentences-deleted")
            self.sentences.add(
                [sid for sid, _, _ in sentence_rows],
                sentence_vectors,
                [meta for _, _, meta in sentence_rows],
            )
            checkpoint("index:sentences-added")
        metadatas = [
            {"source": c.source, "language": lang}
            for c, lang in zip(chunks, languages, strict=True)
        ]
        self.vectors.add(ids, vectors, metadatas)
        checkpoint("index:vectors-added")
        # Upsert semantics for the lexical side too: a re-add after a crash must not duplicate.
        self.lexical.delete(ids)
        checkpoint("index:lexical-deleted")
        self.lexical.add(ids, texts, languages)
        checkpoint("index:lexical-added")

    def _embed_chunks(
        self, chunks: Sequence[Chunk], texts: list[str], sentence_rows: list[tuple[str, str, dict]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The chunks' vectors and their sentences' vectors, as [retrieval] asks for them."""
        pooled = self.settings.chunk_vectors == "pooled"
        pieces = [pooling_pieces(c) for c in chunks] if pooled else [[t] for t in texts]
        wanted = [p for ps in pieces for p in ps]
        # One call: the cache encodes each distinct text once, and the encoder gets one long
        # batch, which it sorts by length so that padding stays small.
        embedded = self.embed(wanted + [text for _, text, _ in sentence_rows])
        if not pooled:
            return embedded[: len(texts)], embedded[len(texts) :]
        rows, row = [], 0
        for ps in pieces:
            rows.append(pool(embedded[row : row + len(ps)], [len(p.split()) for p in ps]))
            row += len(ps)
        return np.stack(rows), embedded[len(wanted) :]

    def _sentence_rows(
        self, chunks: Sequence[Chunk], languages: Sequence[str]
    ) -> list[tuple[str, str, dict]]:
        if self.sentences is None:
            return []
        rows = []
        for chunk, language in zip(chunks, languages, strict=True):
            for sentence_id, sentence in chunk_sentences(chunk, self.settings.sentence_min_words):
                meta = {"chunk_id": chunk.chunk_id, "language": language}
                rows.append((sentence_id, sentence, meta))
        return rows

    def sentence_ids(self, chunks: Iterable[Chunk]) -> set[str]:
        """The sentence ids the sentence collection should hold for these chunks."""
        if self.sentences is None:
            return set()
        least = self.settings.sentence_min_words
        return {sid for chunk in chunks for sid, _ in chunk_sentences(chunk, least)}

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.lexical.delete(ids)
            checkpoint("index:delete-lexical")
            self.vectors.delete(ids)
            checkpoint("index:delete-vectors")
            if self.sentences is not None:
                self.sentences.delete_where_chunk(ids)
                checkpoint("index:delete-sentences")

    def counts(self) -> dict[str, int]:
        return {"vectors": self.vectors.count(), "lexical": self.lexical.count()}

    def reconcile(
        self,
        corpus_ids: set[str],
        fetch: Callable[[list[str]], list[Chunk]],
        on_batch: Callable[[int], None] | None = None,
        batch: int = 256,
        on_start: Callable[[int], None] | None = None,
    ) -> ReconcileReport:
        """Make both indexes hold exactly the corpus's chunks: add what is missing, drop extras."""
        report = ReconcileReport()
        vector_ids, lexical_ids = self.vectors.ids(), self.lexical.ids()
        extra = (vector_ids | lexical_ids) - corpus_ids
        if self.sentences is not None:
            extra |= self.sentences.chunk_ids_present() - corpus_ids
        self.delete(sorted(extra))
        report.removed = len(extra)
        missing = sorted(corpus_ids - (vector_ids & lexical_ids))
        if on_start:
            on_start(len(missing))
        for start in range(0, len(missing), batch):
            chunks = fetch(missing[start : start + batch])
            self.add(chunks)
            report.added += len(chunks)
            if on_batch:
                on_batch(len(chunks))
        report.missing_ids = missing
        return report

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding; the last one is kept, since answering a question embeds it
        twice (search, then the relevance check) and a query costs far more than a lookup."""
        if self._last_query is None or self._last_query[0] != query:
            self._last_query = (query, self.embedder.embed_query(query))
        return self._last_query[1]

    def search(self, query: str, k: int, mode: str = "hybrid") -> list[Hit]:
        """Best k chunk ids for the query: mode is "hybrid", "dense" or "lexical"."""
        s = self.settings
        n = max(s.candidates, k)
        query_language = detect_language(query)
        # Read before BM25 starts on the same SQLite connection, which would make it wait.
        present = self.lexical.languages() if mode in ("hybrid", "dense") else []
        # BM25 runs beside the query's embedding and the graph searches (SQLite, torch and
        # Chroma all leave the GIL), so hybrid costs about the slower side, not both.
        lexical_job = None
        if mode in ("hybrid", "lexical"):
            lexical_job = self._threads.submit(
                self.lexical.search, query, n, max_rows=s.lexical_max_rows
            )
        dense: dict[str, float] = {}
        languages: dict[str, str] = {}
        if mode in ("hybrid", "dense"):
            dense = self._dense(query, query_language, n, present, lexical_job, languages)
        lexical = _lexical_hits(lexical_job, languages)
        if mode == "dense":
            hits = [Hit(c, v, dense=v) for c, v in dense.items()]
        elif mode == "lexical":
            hits = [Hit(c, v, lexical=v) for c, v in lexical.items()]
        else:
            hits = fuse(
                dense,
                lexical,
                query_language,
                languages,
                self.embedder.languages,
                s.lexical_weight,
            )
        hits.sort(key=lambda h: (-h.score, h.chunk_id))
        return hits[: max(k, s.rerank_top if s.rerank_model else k)]

    def _dense(
        self,
        query: str,
        query_language: str,
        n: int,
        present: Sequence[str],
        lexical_job: Future[list[tuple[str, float, str]]] | None,
        languages: dict[str, str],
    ) -> dict[str, float]:
        """Dense similarity of the best n chunks of each passage language present (and of
        what the lexical search finds), each chunk scoring partly as its best sentence; fills
        in `languages` for what it found. Each language is searched on its own (see
        index/vectors.py), then put on the query's language's scale (see language_offset)."""
        s = self.settings
        query_vector = self.query_vector(query)
        passage: dict[str, float] = {}
        sentence: dict[str, float] = {}
        # The searches run side by side (Chroma leaves the GIL): 4.1 ms instead of 7.6 for two
        # languages' chunks and sentences over 11k chunks.
        chunk_jobs = [
            self._threads.submit(self.vectors.search, query_vector, n, language)
            for language in present
        ]
        sentence_jobs = [
            self._threads.submit(self.sentences.search_chunks, query_vector, 3 * n, language)
            for language in (present if self.sentences is not None else ())
        ]
        for job in chunk_jobs:
            for chunk_id, score, found_language in job.result():
                passage[chunk_id] = score
                languages[chunk_id] = found_language
        for job in sentence_jobs:
            for chunk_id, score, found_language in job.result():
                if score > sentence.get(chunk_id, -1.0):
                    sentence[chunk_id] = score
                languages.setdefault(chunk_id, found_language)
        also = _lexical_hits(lexical_job, languages)
        # Passage vectors for chunks that only a sentence (or BM25) brought in.
        missing = [c for c in sentence.keys() | also.keys() if c not in passage]
        for c, v in self.vectors.vectors(missing, languages).items():
            passage[c] = float(v @ query_vector)
        share = s.sentence_share if sentence else 0.0
        return {
            c: (1 - share) * p
            + share * max(p, sentence.get(c, p))
            + self.language_offset(query_language, languages.get(c, "other"))
            for c, p in passage.items()
        }

    def language_offset(self, query_language: str, passage_language: str) -> float:
        """What a passage's similarity gains for being in another language than the query.

        Multilingual embedders score a question closer to passages in its own language: for
        multilingual-e5-small an XQuAD paragraph's translation scores 0.07 below the original
        for the same question, and unrelated passages 0.04-0.05 lower on average
        (benchmarks/language_bias.py). Without the offset, same-language noise buries a
        passage that answers in the other language; an offset below the translation gap still
        lets the question's own language win between two equally good passages."""
        if query_language == passage_language or "other" in (query_language, passage_language):
            return 0.0
        return self.settings.cross_language_offset

    def similarity(self, query: str, chunk_ids: Sequence[str]) -> float:
        """Best similarity between the query and these chunks or their sentences, on the
        query's language's scale: an absolute "how close is memory to this question"."""
        if not chunk_ids:
            return 0.0
        query_vector = self.query_vector(query)
        languages = self.lexical.languages_of(chunk_ids)
        scores = {
            c: float(v @ query_vector)
            for c, v in self.vectors.vectors(chunk_ids, languages).items()
        }
        if self.sentences is not None:
            for language in set(languages.values()):
                found = self.sentences.search_chunks(
                    query_vector,
                    50 * len(chunk_ids),
                    language,
                    chunk_ids=[c for c in chunk_ids if languages.get(c) == language],
                )
                for chunk_id, score, _ in found:
                    scores[chunk_id] = max(score, scores.get(chunk_id, -1.0))
        query_language = detect_language(query)
        return max(
            (
                score + self.language_offset(query_language, languages.get(c, "other"))
                for c, score in scores.items()
            ),
            default=0.0,
        )

    def close(self) -> None:
        if self._search_threads is not None:
            self._search_threads.shutdown()
        self.lexical.close()
        self._cache.close()

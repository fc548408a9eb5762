"""The dense side: our own vectors in a Chroma collection (embedded or a `chroma run` server)."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

# Chroma rejects very large add() calls; stay well under its max batch size.
_ADD_BATCH = 1000


def collection_name(model: str, kind: str = "chunks") -> str:
    """One collection per embedding model, so a model change never mixes vector spaces."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", model).strip("-_")[-40:] or "default"
    return f"{kind}-{slug}"


def _not_on_disk_yet(exc: Exception) -> bool:
    """Another process is writing a collection's first vectors and has not put its HNSW
    files on disk yet: for a reader, that collection is still empty (not an error)."""
    return "Nothing found on disk" in str(exc)


class VectorStore:
    def __init__(
        self, chroma_dir: Path, model: str, chroma_url: str = "", kind: str = "chunks"
    ) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if chroma_url:
            host, _, port = chroma_url.removeprefix("http://").rstrip("/").partition(":")
            self._client = chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
            self._collection = self._open_collection(model, kind)
            return
        # Chroma creates its tables on first open without a cross-process guard: two processes
        # opening a new home at once fail with "table collections already exists". Opening is
        # short, so every process takes turns at it; reads and writes after it run side by side.
        chroma_dir.mkdir(parents=True, exist_ok=True)
        with open(chroma_dir / ".open.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # released when the file closes
            self._client = chromadb.PersistentClient(path=str(chroma_dir), settings=settings)
            self._collection = self._open_collection(model, kind)

    def _open_collection(self, model: str, kind: str):
        return self._client.get_or_create_collection(
            collection_name(model, kind),
            metadata={"hnsw:space": "cosine"},
            embedding_function=None,
        )

    def add(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]) -> None:
        for start in range(0, len(ids), _ADD_BATCH):
            end = start + _ADD_BATCH
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                metadatas=list(metadatas[start:end]),
            )

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _ADD_BATCH):
            self._collection.delete(ids=ids[start : start + _ADD_BATCH])

    def delete_where_chunk(self, chunk_ids: Iterable[str]) -> None:
        """Delete entries whose metadata points at one of these chunks (sentence vectors)."""
        chunk_ids = list(chunk_ids)
        for start in range(0, len(chunk_ids), _ADD_BATCH):
            part = chunk_ids[start : start + _ADD_BATCH]
            self._collection.delete(where={"chunk_id": {"$in": part}})

    def chunk_ids_present(self) -> set[str]:
        """The chunk ids that entries point at (for sentence vectors)."""
        found: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._collection.get(include=["metadatas"], limit=page, offset=offset)
            found.update((m or {}).get("chunk_id", "") for m in got["metadatas"])
            if len(got["ids"]) < page:
                return found
            offset += page

    def search_chunks(self, vector: np.ndarray, limit: int) -> list[tuple[str, float, str]]:
        """Like search(), for entries that point at a chunk: (chunk_id, similarity, language)."""
        result = self._query(vector, limit)
        return [
            ((meta or {}).get("chunk_id", ""), 1.0 - float(d), (meta or {}).get("language", ""))
            for d, meta in zip(result["distances"][0], result["metadatas"][0], strict=True)
        ]

    def _query(self, vector: np.ndarray, limit: int) -> dict:
        # Chroma caps n_results at the collection size itself; no count() round trip.
        try:
            return self._collection.query(
                query_embeddings=[vector], n_results=limit, include=["distances", "metadatas"]
            )
        except Exception as exc:
            if not _not_on_disk_yet(exc):
                raise
            return {"ids": [[]], "distances": [[]], "metadatas": [[]]}

    def ids(self) -> set[str]:
        found: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._collection.get(include=[], limit=page, offset=offset)["ids"]
            found.update(got)
            if len(got) < page:
                return found
            offset += page

    def count(self) -> int:
        return self._collection.count()

    def search(self, vector: np.ndarray, limit: int) -> list[tuple[str, float, str]]:
        """Return (chunk_id, cosine similarity, passage language) best first."""
        result = self._query(vector, limit)
        return [
            (chunk_id, 1.0 - float(distance), (meta or {}).get("language", "other"))
            for chunk_id, distance, meta in zip(
                result["ids"][0], result["distances"][0], result["metadatas"][0], strict=True
            )
        ]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        try:
            got = self._collection.get(ids=list(ids), include=["embeddings"])
        except Exception as exc:
            if not _not_on_disk_yet(exc):
                raise
            return {}
        return {
            i: np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }

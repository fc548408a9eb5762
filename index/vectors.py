"""The dense side: our own vectors in Chroma (embedded or a `chroma run` server), one
collection per passage language.

Why per language: a multilingual embedder puts each language in its own region of the
space, and one HNSW graph over both, searched from an English question, hardly ever reaches
a small Russian region (English questions over 243 Russian paragraphs among 10.7k English
chat windows: the answer paragraph was in Chroma's top 200 for 1.5% of them, in the exact
top 5 for 57%). Chroma's metadata filter finds them but costs 10-90 ms a query; a graph per
language is searched in 3-5 ms.
"""

from __future__ import annotations

import fcntl
import functools
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import numpy as np

from mem.corpus.language import LANGUAGES

T = TypeVar("T")

# Chroma rejects very large add() calls; stay well under its max batch size.
_ADD_BATCH = 1000
# A server that does not answer the first request within this is treated as down.
_PROBE_TIMEOUT_S = 10.0
# Chroma's collection names: letters, digits, "._-", starting with a letter or digit.
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class IndexUnavailable(Exception):
    """The vector index cannot be used: a Chroma server that is down, refuses the token or
    is misconfigured. The message is one line that names the server and what to do."""


@dataclass(frozen=True)
class ChromaServer:
    """Where a `chroma run` server is and how this home talks to it."""

    url: str
    token: str = field(default="", repr=False)
    token_env: str = ""  # the variable the token came from, named in error messages
    prefix: str = ""  # put before every collection name (one memory home's namespace)
    # Seconds to wait for any one answer: a server that accepts and never answers is down.
    timeout_s: float = 60.0

    def address(self) -> tuple[str, int, bool]:
        """(host, port, ssl) of the URL; raises IndexUnavailable for one Chroma cannot use."""
        parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IndexUnavailable(
                f"[index] chroma_url = {self.url!r} is not an http(s)://host:port address"
            )
        if parts.path.strip("/"):
            raise IndexUnavailable(
                f"[index] chroma_url = {self.url!r}: Chroma's client takes host and port only, "
                "not a path"
            )
        ssl = parts.scheme == "https"
        return parts.hostname, parts.port or (443 if ssl else 8000), ssl

    def down(self, reason: str) -> IndexUnavailable:
        host, port, _ = self.address()
        return IndexUnavailable(
            f"the Chroma server at {self.url} is not reachable ({reason}): start it "
            f"(chroma run --path DIR --host {host} --port {port}) or correct [index] chroma_url "
            "in config.toml; the corpus keeps what was ingested, the next run indexes it"
        )

    def refused(self, status: int | str) -> IndexUnavailable:
        env = self.token_env or "the variable [index] chroma_token_env names"
        sent = f"the token in ${env}" if self.token else f"no token (${env} is not set)"
        return IndexUnavailable(
            f"the Chroma server at {self.url} refused {sent} (HTTP {status}): set ${env} to a "
            "token the server accepts"
        )


def collection_name(model: str, kind: str = "chunks", language: str = "", prefix: str = "") -> str:
    """One collection per embedding model (a model change never mixes vector spaces) and
    passage language; without a language, the single collection homes had before. On a
    server, the home's prefix keeps two homes' collections apart."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", model).strip("-_")[-40:] or "default"
    name = f"{kind}-{slug}" + (f"-{language}" if language else "")
    return f"{prefix}-{name}" if prefix else name


def _unavailable(server: ChromaServer, exc: Exception) -> IndexUnavailable | None:
    """The IndexUnavailable an error from Chroma's HTTP client stands for, if it is one."""
    import httpx
    from chromadb.errors import AuthorizationError, ChromaAuthError

    if isinstance(exc, IndexUnavailable):
        return exc
    if isinstance(exc, httpx.TransportError):
        return server.down(type(exc).__name__)
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403):
        return server.refused(exc.response.status_code)
    if isinstance(exc, ChromaAuthError):
        return server.refused(401)
    if isinstance(exc, AuthorizationError):
        return server.refused(403)
    if "Could not connect to a Chroma server" in str(exc):
        return server.down("connection refused")
    return None


def _on_server(method):
    """A VectorStore method whose server errors become one IndexUnavailable."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if self.server is None:
            return method(self, *args, **kwargs)
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            found = _unavailable(self.server, exc)
            if found is None or found is exc:
                raise
            raise found from exc

    return guarded


def connect(server: ChromaServer):
    """A chromadb HttpClient for the server, after one request that tells a server that is
    down or refuses the token apart from one that works (Chroma's own client reports both as
    a bare ValueError, or not at all until the first write)."""
    import chromadb
    import httpx
    from chromadb.config import Settings

    host, port, ssl = server.address()
    base = f"{'https' if ssl else 'http'}://{host}:{port}"
    headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    try:
        probe = httpx.get(
            f"{base}/api/v2/auth/identity",
            headers=headers,
            timeout=min(_PROBE_TIMEOUT_S, server.timeout_s),
        )
    except httpx.HTTPError as exc:
        raise server.down(str(exc) or type(exc).__name__) from exc
    if probe.status_code in (401, 403):
        raise server.refused(probe.status_code)
    if probe.status_code >= 400:
        raise IndexUnavailable(
            f"{server.url} answered HTTP {probe.status_code} to Chroma's identity request: is "
            "[index] chroma_url a Chroma 1.x server?"
        )
    auth = {}
    if server.token:
        # Chroma's token auth sends "Authorization: Bearer <token>", as the probe did.
        auth = {
            "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
            "chroma_client_auth_credentials": server.token,
        }
    try:
        settings = Settings(anonymized_telemetry=False, **auth)
        client = _within(
            server,
            lambda: chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings),
        )
    except ValueError as exc:
        found = _unavailable(server, exc)
        if found is not None:
            raise found from exc
        if server.token and "Invalid token" in str(exc):
            raise IndexUnavailable(
                f"the token in ${server.token_env} has characters Chroma does not accept "
                "(ASCII letters, digits and punctuation only)"
            ) from exc
        raise
    # Chroma's client waits for an answer forever (its httpx session has timeout=None), so a
    # server that hangs after the probe would hang every command; a timeout makes it an
    # httpx.TimeoutException, which _unavailable reports as a server that is down.
    client._server._session.timeout = httpx.Timeout(server.timeout_s)
    return client


def _within(server: ChromaServer, make: Callable[[], T]) -> T:
    """make(), given up after server.timeout_s. Chroma's HttpClient asks the server for its
    tenant and database before its session can be given a timeout, so a server that answers
    the probe and then hangs would hang here; the abandoned thread is a daemon and never
    keeps the process alive."""
    done: list = []

    def run() -> None:
        try:
            done.append((True, make()))
        except BaseException as exc:  # handed to the caller's thread below
            done.append((False, exc))

    worker = threading.Thread(target=run, name="chroma-connect", daemon=True)
    worker.start()
    worker.join(server.timeout_s)
    if not done:
        raise server.down(f"no answer within {server.timeout_s:g} s")
    ok, value = done[0]
    if not ok:
        raise value
    return value


def _not_on_disk_yet(exc: Exception) -> bool:
    """Another process is writing a collection's first vectors and has not put its HNSW
    files on disk yet: for a reader, that collection is still empty (not an error)."""
    return "Nothing found on disk" in str(exc)


def _embeddings(collection, ids: list[str]) -> dict[str, np.ndarray]:
    """The stored vectors of those ids the collection holds. While another process is
    adding to the collection, Chroma can list an id whose vector it cannot read yet ("Error
    finding id"): the ids are then read one by one and such an id is left out, as if its
    vector were not written yet (which it nearly is not)."""
    try:
        got = collection.get(ids=ids, include=["embeddings"])
    except Exception as exc:
        if _not_on_disk_yet(exc):
            return {}
        if "Error finding id" not in str(exc):
            raise
        if len(ids) == 1:
            return {}
        return {k: v for i in ids for k, v in _embeddings(collection, [i]).items()}
    return {
        i: np.asarray(v, dtype=np.float32)
        for i, v in zip(got["ids"], got["embeddings"], strict=True)
    }


def _language(meta: dict | None) -> str:
    language = (meta or {}).get("language", "other")
    return language if language in LANGUAGES else "other"


class VectorStore:
    """Vectors with metadata; each entry goes to its metadata's language's collection."""

    def __init__(
        self,
        chroma_dir: Path,
        model: str,
        kind: str = "chunks",
        server: ChromaServer | None = None,
    ) -> None:
        import chromadb
        from chromadb.config import Settings

        self.server = server
        self.kind = kind
        if server is not None:
            # Nothing is written in the home: the server holds the vectors.
            if server.prefix and not _PREFIX.fullmatch(server.prefix):
                raise IndexUnavailable(
                    f"[index] collection_prefix = {server.prefix!r}: use at most 63 letters, "
                    "digits, '.', '_' or '-', starting with a letter or digit"
                )
            self._client = connect(server)
            try:
                self._open_collections(model, kind, server.prefix)
            except Exception as exc:
                found = _unavailable(server, exc)
                if found is None:
                    raise
                raise found from exc
            return
        settings = Settings(anonymized_telemetry=False)
        # Chroma creates its tables on first open without a cross-process guard: two processes
        # opening a new home at once fail with "table collections already exists". Opening is
        # short, so every process takes turns at it; reads and writes after it run side by side.
        chroma_dir.mkdir(parents=True, exist_ok=True)
        with open(chroma_dir / ".open.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # released when the file closes
            self._client = chromadb.PersistentClient(path=str(chroma_dir), settings=settings)
            self._open_collections(model, kind)

    def _open_collections(self, model: str, kind: str, prefix: str = "") -> None:
        self._collections = {
            language: self._client.get_or_create_collection(
                collection_name(model, kind, language, prefix),
                metadata={"hnsw:space": "cosine"},
                embedding_function=None,
            )
            for language in LANGUAGES
        }
        self.names = {lang: c.name for lang, c in self._collections.items()}
        self._move_from_single_collection(collection_name(model, kind, prefix=prefix))

    def _move_from_single_collection(self, name: str) -> None:
        """Homes made before per-language collections: move their vectors over, once (under
        the open lock; an interrupted move is finished by the next open, upserts repeat)."""
        if name not in {getattr(c, "name", c) for c in self._client.list_collections()}:
            return
        old = self._client.get_collection(name, embedding_function=None)
        total = old.count()
        if total:
            print(
                f"mem: moving {total} vectors into one collection per language (once)",
                file=sys.stderr,
            )
        offset, page = 0, 2000
        while True:
            got = old.get(include=["embeddings", "metadatas"], limit=page, offset=offset)
            if not got["ids"]:
                break
            self.add(got["ids"], np.asarray(got["embeddings"]), got["metadatas"])
            offset += page
        self._client.delete_collection(name)

    @_on_server
    def add(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]) -> None:
        """Upsert. A chunk id is a hash of its text, so an id never changes language and
        never needs removing from another language's collection first."""
        by_language: dict[str, list[int]] = {}
        for row, meta in enumerate(metadatas):
            by_language.setdefault(_language(meta), []).append(row)
        for language, rows in by_language.items():
            for start in range(0, len(rows), _ADD_BATCH):
                part = rows[start : start + _ADD_BATCH]
                self._collections[language].upsert(
                    ids=[ids[r] for r in part],
                    embeddings=np.asarray(vectors)[part],
                    metadatas=[metadatas[r] for r in part],
                )

    def _chosen(self, languages: Iterable[str] | None):
        """The collections of these languages (all when None): each call costs a round trip
        (about 40 s more over a 480-file ingest when every delete asked all three)."""
        wanted = set(LANGUAGES if languages is None else languages)
        return [c for lang, c in self._collections.items() if lang in wanted]

    @_on_server
    def delete(self, ids: Iterable[str], languages: Iterable[str] | None = None) -> None:
        ids = list(ids)
        for collection in self._chosen(languages):
            for start in range(0, len(ids), _ADD_BATCH):
                collection.delete(ids=ids[start : start + _ADD_BATCH])

    @_on_server
    def delete_where_chunk(
        self, chunk_ids: Iterable[str], languages: Iterable[str] | None = None
    ) -> None:
        """Delete entries whose metadata points at one of these chunks (sentence vectors)."""
        chunk_ids = list(chunk_ids)
        for collection in self._chosen(languages):
            for start in range(0, len(chunk_ids), _ADD_BATCH):
                part = chunk_ids[start : start + _ADD_BATCH]
                collection.delete(where={"chunk_id": {"$in": part}})

    def _pages(self, include: list[str]):
        for collection in self._collections.values():
            offset, page = 0, 5000
            while True:
                got = collection.get(include=include, limit=page, offset=offset)
                yield got
                if len(got["ids"]) < page:
                    break
                offset += page

    @_on_server
    def chunk_ids_present(self) -> set[str]:
        """The chunk ids that entries point at (for sentence vectors)."""
        return {
            (m or {}).get("chunk_id", "")
            for got in self._pages(["metadatas"])
            for m in got["metadatas"]
        }

    @_on_server
    def ids(self) -> set[str]:
        return {i for got in self._pages([]) for i in got["ids"]}

    @_on_server
    def count(self) -> int:
        return sum(collection.count() for collection in self._collections.values())

    @_on_server
    def search(
        self, vector: np.ndarray, limit: int, language: str | None = None
    ) -> list[tuple[str, float, str]]:
        """Return (id, cosine similarity, passage language) best first: the best limit of
        one language, or of each language merged when language is None."""
        found = [
            (entry_id, similarity, lang)
            for lang in ([language] if language else LANGUAGES)
            for entry_id, similarity in self._query(lang, vector, limit)
        ]
        return sorted(found, key=lambda hit: -hit[1])

    @_on_server
    def search_chunks(
        self,
        vector: np.ndarray,
        limit: int,
        language: str | None = None,
        chunk_ids: Sequence[str] = (),
    ) -> list[tuple[str, float, str]]:
        """Like search(), for entries named "<chunk_id>:<n>" (sentence vectors): (chunk_id,
        similarity, language); only those of these chunks when chunk_ids are given."""
        where = {"chunk_id": {"$in": list(chunk_ids)}} if chunk_ids else None
        found = [
            (entry_id.rpartition(":")[0], similarity, lang)
            for lang in ([language] if language else LANGUAGES)
            for entry_id, similarity in self._query(lang, vector, limit, where)
        ]
        return sorted(found, key=lambda hit: -hit[1])

    def _query(
        self, language: str, vector: np.ndarray, limit: int, where: dict | None = None
    ) -> list[tuple[str, float]]:
        # Distances only: the language is the collection's, and fetching metadata would
        # double the cost of a query. Chroma caps n_results at the collection size itself.
        try:
            result = self._collections[language].query(
                query_embeddings=[vector], n_results=limit, where=where, include=["distances"]
            )
        except Exception as exc:
            if not _not_on_disk_yet(exc):
                raise
            return []
        return [
            (entry_id, 1.0 - float(distance))
            for entry_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    @_on_server
    def vectors(
        self, ids: Sequence[str], languages: Mapping[str, str] | None = None
    ) -> dict[str, np.ndarray]:
        """The stored vectors of these ids. An id whose language is given is looked up in that
        language's collection only (a lookup costs a round trip); any other, in each in turn."""
        languages = languages or {}
        found: dict[str, np.ndarray] = {}
        for language, collection in self._collections.items():
            wanted = [i for i in ids if i not in found and languages.get(i, language) == language]
            if wanted:
                found.update(_embeddings(collection, wanted))
        return found

    # -- one language's collection at a time: copying between stores (index/migrate.py) ----

    @_on_server
    def ids_in(self, language: str) -> set[str]:
        collection, found, offset, page = self._collections[language], set(), 0, 10000
        while True:
            got = collection.get(include=[], limit=page, offset=offset)
            found.update(got["ids"])
            if len(got["ids"]) < page:
                return found
            offset += page

    @_on_server
    def count_in(self, language: str) -> int:
        return self._collections[language].count()

    @_on_server
    def entries(self, language: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray, list]:
        """(ids, vectors, metadatas) of these ids, as stored (the order Chroma returns)."""
        got = self._collections[language].get(ids=list(ids), include=["embeddings", "metadatas"])
        return got["ids"], np.asarray(got["embeddings"], dtype=np.float32), got["metadatas"]

    @_on_server
    def put(
        self, language: str, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence
    ) -> None:
        """Upsert into one language's collection as given (no routing by metadata)."""
        for start in range(0, len(ids), _ADD_BATCH):
            end = start + _ADD_BATCH
            self._collections[language].upsert(
                ids=list(ids[start:end]),
                embeddings=np.asarray(vectors)[start:end],
                metadatas=list(metadatas[start:end]),
            )

    @_on_server
    def delete_in(self, language: str, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _ADD_BATCH):
            self._collections[language].delete(ids=ids[start : start + _ADD_BATCH])

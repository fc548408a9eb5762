"""What `mem serve` and `mem mcp` do, as blocking, thread-safe calls on one memory home.

A `Memory` (its SQLite connections, its Index with per-query state) is used by one thread
at a time, so the service keeps a small pool of them for readers and lends one per call;
writes (ingest, remembering, notes) take the home's writer lock as every `mem` command
does, so the server, a `mem ingest` in a terminal and the nightly job never interleave.
Embedded Chroma keeps its vector index in the memory of the process that opened it and does
not see vectors another process adds later (a `mem ingest` in a terminal, the nightly job),
though SQLite does. So before a read the service looks at Chroma's files: changed by someone
else, and no writer busy, it opens the home afresh for the next readers (about a second).

Loaded answer models are kept for the life of the process (that is the point of a server:
no cold start per question), and one answer is generated at a time, since a llama.cpp or
transformers model is not to be run by two threads at once and either uses every core.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mem.memory import Answer, Memory
from mem.memory.answering.ask import AskSettings
from mem.memory.records import IngestReport

# The id a client may send as `model` for "whatever `mem ask` would use".
DEFAULT_MODEL_ID = "mem"
# How long a note or a turn waits for a running ingest before it gives up.
WRITE_WAIT_S = 30.0


class ServiceError(Exception):
    """A request the service cannot do; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ModelChoice:
    """A model id a client can name, and the `mem ask` settings it stands for."""

    id: str
    settings: AskSettings
    description: str


class Service:
    """One memory home served to many clients."""

    def __init__(self, home: str | os.PathLike | None = None, readers: int = 4) -> None:
        first = Memory(home)
        self.home = first.home
        self.config = first.config
        self._readers = readers
        self._state = threading.Lock()  # guards the pool swap and the writers count
        self._writers = 0  # our own writes in flight: Chroma's files change under us then
        self._pool: queue.Queue[Memory] = queue.Queue()
        self._lent: set[int] = set()  # ids of this generation's Memory objects
        self._fill([first])
        self._seen = self._stamp()
        self._backends: dict[tuple, object] = {}
        self._backends_lock = threading.Lock()
        self._generate = threading.Lock()
        self._write = threading.Lock()  # this process's writes take turns before the flock
        self.watching: list[str] = []

    # -- plumbing ----------------------------------------------------------------------

    def _fill(self, memories: list[Memory]) -> None:
        while len(memories) < self._readers:
            memories.append(Memory(self.home))
        for memory in memories:
            _ = memory.index  # opened now: opening may touch Chroma's files, which is not news
        self._pool = queue.Queue()
        for memory in memories:
            self._pool.put(memory)
        self._lent = {id(m) for m in memories}

    def _stamp(self) -> tuple:
        from mem.index.store import CHROMA_DB

        found = []
        for name in (CHROMA_DB, f"{CHROMA_DB}-wal"):
            try:
                st = (self.home / name).stat()
                found.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                found.append(None)
        return tuple(found)

    def _writer_busy(self) -> bool:
        """Whether a writer (any process) holds the home's writer lock right now."""
        with open(self.home / ".writer.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def _refresh(self) -> None:
        """Reopen the home when another process changed Chroma's files (see the top)."""
        if self._writers or self._stamp() == self._seen or self._writer_busy():
            return
        from chromadb.api.shared_system_client import SharedSystemClient

        with self._state:
            if self._writers or self._stamp() == self._seen:
                return
            idle = []
            while not self._pool.empty():
                idle.append(self._pool.get_nowait())
            for memory in idle:
                memory.close()
            SharedSystemClient.clear_system_cache()  # the next client loads from disk
            self._fill([])
            self._seen = self._stamp()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Our own write: no reopening meanwhile, and its changes count as seen after."""
        with self._state:
            self._writers += 1
        try:
            yield
        finally:
            with self._state:
                self._writers -= 1
                if not self._writers:
                    self._seen = self._stamp()

    @contextmanager
    def memory(self) -> Iterator[Memory]:
        """Borrow a Memory for one call (waits while all are lent)."""
        self._refresh()
        memory = self._pool.get()
        try:
            yield memory
        finally:
            with self._state:
                if id(memory) in self._lent:
                    self._pool.put(memory)
                else:  # lent before the home was reopened
                    memory.close()

    def warm_up(self) -> None:
        """Load the embedder and open the index now, so the first request is not the slow one."""
        with self.memory() as memory:
            memory.retrieve("warm up", 1)

    def close(self) -> None:
        while not self._pool.empty():
            self._pool.get_nowait().close()

    # -- reading -----------------------------------------------------------------------

    def search(self, query: str, k: int | None = None) -> dict:
        """`mem ask QUERY --no-llm --json`: the same object (docs/ASK_JSON.md)."""
        if not query.strip():
            raise ServiceError("the query is empty")
        with self.memory() as memory:
            sources = memory.retrieve(query, k)
        return Answer(question=query, answer=None, sources=tuple(sources)).to_json()

    def get_source(self, ident: str) -> dict:
        """A chunk by its id, or a whole source (a path as ingested, a conversation or note
        id) with each chunk and its locator."""
        with self.memory() as memory:
            chunks = memory.corpus.chunks([ident])
            if chunks:
                c = chunks[0]
                return {
                    "chunk_id": c.chunk_id,
                    "source": c.source,
                    "title": c.title,
                    "locator": c.locator,
                    "text": c.text,
                }
            chunks = memory.corpus.chunks_of(ident)
            document = next((d for d in memory.documents() if d.source == ident), None)
        if document is None:
            raise ServiceError(f"no chunk or source with id {ident!r}", 404, "not_found")
        return {
            "source": document.source,
            "title": document.title,
            "kind": document.kind,
            "ingested_at": document.ingested_at,
            "chunks": [
                {"chunk_id": c.chunk_id, "locator": c.locator, "text": c.text} for c in chunks
            ],
        }

    def status(self) -> dict:
        with self.memory() as memory:
            info = memory.status()
        return {**info, "watching": list(self.watching)}

    # -- models ------------------------------------------------------------------------

    def models(self) -> list[ModelChoice]:
        """`mem` (what `mem ask` uses: the current core-self adapter if there is one, else
        the base model), the base model itself, and every registered adapter version."""
        from mem.adapters.registry import CORE, Registry

        base = self.config.llm.model
        root = self.home / "adapters"
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        core_current = Registry(root, CORE).current() if CORE in names else None
        default = AskSettings(adapter="current") if core_current else AskSettings()
        found = [
            ModelChoice(DEFAULT_MODEL_ID, default, "what `mem ask` answers with"),
            ModelChoice(base, AskSettings(), "the base model ([llm] model), no adapter"),
        ]
        for name in names:
            registry = Registry(root, name)
            current = registry.current()
            for version in registry.version_names():
                if name == CORE:
                    settings = AskSettings(adapter=str(registry.dir / version))
                elif version == current:  # a domain adapter runs stacked on core-self
                    settings = AskSettings(domains=(name,))
                else:
                    continue  # an old domain version: nothing to stack it on
                mark = " (current)" if version == current else ""
                found.append(ModelChoice(f"{name}/{version}", settings, f"adapter{mark}"))
        return found

    def choose(self, model: str | None) -> AskSettings:
        if not model:
            model = DEFAULT_MODEL_ID
        for choice in self.models():
            if choice.id == model:
                return choice.settings
        known = ", ".join(c.id for c in self.models())
        raise ServiceError(f"unknown model {model!r} (known: {known})", 404, "model_not_found")

    def _backend(self, settings: AskSettings):
        """The loaded backend for these settings, loaded once per process."""
        from mem.memory.answering.llm import load_backend

        key = (settings.backend, settings.model, settings.adapter, settings.domains)
        with self._backends_lock:
            if key not in self._backends:
                self._backends[key] = load_backend(
                    self.config,
                    settings.backend,
                    settings.model,
                    settings.adapter,
                    self.home,
                    settings.domains,
                )
            return self._backends[key]

    # -- answering ---------------------------------------------------------------------

    def ask(
        self,
        question: str,
        model: str | None = None,
        k: int | None = None,
        max_tokens: int | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """One `mem ask` with the model a client named; the exchange is remembered as
        `mem ask` remembers it. Raises ServiceError, or LLMError when the model fails."""
        from mem.memory.answering.ask import ask

        if not question.strip():
            raise ServiceError("there is no user message to answer")
        settings = replace(self.choose(model), max_tokens=max_tokens)
        backend_name = settings.backend or self.config.llm.backend
        if backend_name == "none" and not (settings.adapter or settings.domains):
            raise ServiceError('[llm] backend is "none": this memory has no answer model')
        backend = self._backend(settings)
        # Waiting for the model holds no reader; the exchange is remembered (a write).
        with self._generate, self._writing(), self.memory() as memory:
            return ask(memory, question, k, settings, on_token, backend)

    # -- writing -----------------------------------------------------------------------

    def ingest(
        self, paths: Sequence[str], prune: bool = False, tags: Sequence[str] = ()
    ) -> IngestReport:
        """`mem ingest PATHS` on the server's machine (relative paths: from the server's
        working folder). Raises ValueError for a bad tag, LockTimeout when busy."""
        if not paths:
            raise ServiceError("no paths to ingest")
        resolved = [str(Path(p).expanduser().absolute()) for p in paths]
        with self._write, self._writing(), self.memory() as memory:
            return memory.ingest(resolved, prune=prune, progress=False, tags=tags)

    def remember(self, text: str, title: str = "", reply: str = "") -> dict:
        """A note (text alone), or a conversation turn (text and the reply to it), stored
        and indexed at once so the next search finds it."""
        from mem.memory.answering.remember import ask_conversation_id, remember, remember_note
        from mem.memory.lock import writer_lock

        if not text.strip():
            raise ServiceError("nothing to remember: the text is empty")
        with self._write, self._writing(), self.memory() as memory:
            chunking = memory.config.chunking
            with writer_lock(memory.home, "mem serve (remembering)", WRITE_WAIT_S):
                if reply:
                    conversation_id = ask_conversation_id()
                    exchange = Answer(question=text, answer=reply, sources=())
                    remember(memory, conversation_id, exchange, chunking)
                    chunks = memory.corpus.chunks_of(conversation_id)
                    return {
                        "source": conversation_id,
                        "kind": "conversation",
                        "locator": chunks[-1].locator if chunks else "",
                    }
                document = remember_note(memory, text, title, chunking)
                chunks = memory.corpus.chunks_of(document.source)
        return {
            "source": document.source,
            "kind": "note",
            "title": document.title,
            "chunks": [{"chunk_id": c.chunk_id, "locator": c.locator} for c in chunks],
        }


def sources_json(answer: Answer) -> list[dict]:
    return [asdict(s) for s in answer.sources]

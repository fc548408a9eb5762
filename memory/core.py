"""The Memory facade: one memory home, its config, corpus and index, and the verbs on them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mem.corpus import Corpus, Document
from mem.corpus.records import ConversationInfo, StoredTurn, check_tags
from mem.index import Index
from mem.index.vectors import ChromaServer
from mem.ingest.audio import Segment, TranscribeOptions, Transcript
from mem.memory.config import Config, load_config
from mem.memory.home import home_id, resolve_home
from mem.memory.lock import writer_lock
from mem.memory.records import Answer, IngestReport, Source

if TYPE_CHECKING:
    from mem.memory.answering.ask import AskSettings, ChatSession


def _offline_by_default(config: Config) -> None:
    """Nothing is fetched from a model hub unless the user allowed downloads in config."""
    if not config.models.allow_downloads:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Memory:
    """A personal memory stored in one home folder."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home: Path = resolve_home(home)
        self.config: Config = load_config(self.home)
        _offline_by_default(self.config)
        self._corpus: Corpus | None = None
        self._index: Index | None = None

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = Corpus(self.home / "corpus.db")
        return self._corpus

    @property
    def index(self) -> Index:
        if self._index is None:
            c = self.config
            self._index = Index(self.home, c.embedding, c.retrieval, self.chroma_server())
        return self._index

    def chroma_server(self) -> ChromaServer | None:
        """The `chroma run` server [index] names, if any: its token read from the variable
        config names, the collection prefix derived from this home's id unless config sets one."""
        c = self.config.index
        if not c.chroma_url:
            return None
        return ChromaServer(
            c.chroma_url,
            os.environ.get(c.chroma_token_env, "").strip(),
            c.chroma_token_env,
            c.collection_prefix or f"mem-{home_id(self.home)}",
            c.request_timeout_s,
        )

    # -- verbs ---------------------------------------------------------------------------

    def transcribe_options(self) -> TranscribeOptions:
        t = self.config.transcription
        return TranscribeOptions(model=t.model, language=t.language or None)

    def ingest(
        self,
        paths: Sequence[str | os.PathLike],
        prune: bool = False,
        progress: bool = True,
        retranscribe: bool = False,
        tags: Sequence[str] = (),
    ) -> IngestReport:
        """Bring files (or folders, recursively) into memory; unchanged files cost nothing.

        `tags` (e.g. "sport") are added to every file found, unchanged ones included; a
        domain adapter learns from the material of its tag (`mem distill --domain sport`).
        Raises ValueError for a bad tag name.
        """
        from mem.memory.ingesting import IngestRun, MediaSettings

        tags = check_tags(tags)
        started = time.perf_counter()
        chunking = self.config.chunking
        media = MediaSettings(self.transcribe_options(), self.home / "models", retranscribe)
        with writer_lock(self.home, "mem ingest"):
            run = IngestRun(
                self.corpus,
                self.index,
                chunking,
                media,
                progress,
                max_document_mb=self.config.ingest.max_document_mb,
                tags=tags,
            )
            report = run.run([Path(p) for p in paths], prune=prune)
        report.seconds = time.perf_counter() - started
        return report

    def retrieve(self, question: str, k: int | None = None, mode: str = "hybrid") -> list[Source]:
        """The k chunks that best answer the question, best first."""
        k = k or self.config.retrieval.k
        hits = self.index.search(question, k, mode=mode)
        chunks = {c.chunk_id: c for c in self.corpus.chunks([h.chunk_id for h in hits])}
        # A hit the corpus no longer has (index behind after a crash) is dropped, never shown.
        hits = [h for h in hits if h.chunk_id in chunks]
        rerank = self.config.retrieval.rerank_model
        if rerank and hits:
            from mem.index.rerank import rerank_scores

            scores = rerank_scores(rerank, question, [chunks[h.chunk_id].text for h in hits])
            order = sorted(range(len(hits)), key=lambda i: -scores[i])
            ranked = [(hits[i].chunk_id, scores[i]) for i in order]
        else:
            ranked = [(h.chunk_id, h.score) for h in hits]
        sources = []
        for rank, (chunk_id, score) in enumerate(ranked[:k], start=1):
            chunk = chunks[chunk_id]
            sources.append(
                Source(
                    rank=rank,
                    chunk_id=chunk_id,
                    source=chunk.source,
                    title=chunk.title,
                    locator=chunk.locator,
                    score=round(float(score), 4),
                    text=chunk.text,
                )
            )
        return sources

    def ask(
        self,
        question: str,
        k: int | None = None,
        llm: bool = False,
        settings: AskSettings | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Retrieve and (with llm=True) answer with citations [n], streamed to on_token.

        The exchange is remembered as a conversation turn unless settings.remember is False
        (or [llm] remember = false). Raises LLMError when the model cannot be loaded/reached.
        """
        if not llm:
            sources = self.retrieve(question, k)
            return Answer(question=question, answer=None, sources=tuple(sources))
        from mem.memory.answering.ask import AskSettings, ask

        return ask(self, question, k, settings or AskSettings(), on_token)

    def chat(self, settings: AskSettings | None = None, k: int | None = None) -> ChatSession:
        """An interactive session (`mem chat`): its turns are stored as one conversation."""
        from mem.memory.answering.ask import AskSettings, ChatSession

        return ChatSession(self, settings or AskSettings(), k)

    def conversations(self) -> list[ConversationInfo]:
        return self.corpus.conversations()

    def conversation(self, conversation_id: str) -> tuple[ConversationInfo, list[StoredTurn]]:
        """One conversation and its turns; an unambiguous id prefix is enough."""
        matches = self.corpus.find_conversations(conversation_id)
        if len(matches) != 1:
            found = "no" if not matches else f"{len(matches)}"
            raise KeyError(f"{found} conversations match {conversation_id!r}")
        info = next(c for c in self.corpus.conversations() if c.conversation_id == matches[0])
        return info, self.corpus.conversation_turns(matches[0])

    def transcript(self, path: str | os.PathLike) -> Transcript:
        """The stored transcript of an audio/video file, found by its content (renames are fine)."""
        import hashlib

        with open(path, "rb") as handle:
            content_hash = hashlib.file_digest(handle, "sha256").hexdigest()
        stored = self.corpus.transcript(content_hash)
        if stored is None:
            raise KeyError(f"no transcript of {path}; run `mem ingest {path}` first")
        segments = tuple(Segment(s["start"], s["end"], s["text"]) for s in stored.segments)
        return Transcript(
            stored.language, stored.language_probability, stored.duration, segments, stored.model
        )

    def documents(self) -> list[Document]:
        return self.corpus.documents()

    # -- distillation data (memory/distilling/datasets.py does the work) ---------------------

    def score_novelty(self) -> dict:
        """Score chunks not scored yet; the caller holds the writer lock (the nightly job)."""
        from mem.memory.distilling.datasets import score_novelty

        return score_novelty(self)

    def distillable_count(self) -> int:
        """New items since the last dataset build that would be distilled."""
        from mem.memory.distilling.datasets import distillable_count

        return distillable_count(self)

    def novelty(self, since: str | None = None, top: int = 20, min_novelty: float | None = None):
        """Score what is new, and report what the next dataset would take, and why."""
        from mem.memory.distilling.datasets import novelty_report

        with writer_lock(self.home, "mem novelty"):
            return novelty_report(self, since, top, min_novelty)

    def build_dataset(
        self,
        since: str | None = None,
        min_novelty: float | None = None,
        progress: bool = False,
        tag: str | None = None,
    ):
        """Score, select and write an SFT set to <home>/datasets/<id>/ (caller holds the lock);
        with `tag`, from the material of documents tagged so only (a domain's dataset)."""
        from mem.memory.distilling.datasets import build

        return build(self, since, min_novelty, progress, tag)

    def export_dataset(
        self,
        fmt: str,
        out: str | os.PathLike,
        since: str | None = None,
        min_novelty: float | None = None,
        progress: bool = False,
        tag: str | None = None,
    ) -> dict:
        """Build a dataset and write it in `fmt` (alpaca, sharegpt, openai) to `out`."""
        from mem.memory.distilling.datasets import export

        with writer_lock(self.home, "mem export-dataset"):
            return export(self, fmt, Path(out), since, min_novelty, progress, tag)

    # -- adapters (memory/distilling/training.py connects mem.adapters) ----------------------

    def distill(
        self,
        dataset: str = "new",
        steps: int | None = None,
        epochs: float | None = None,
        domain: str | None = None,
        resume: bool = False,
        progress: bool = False,
    ):
        """Train, evaluate and register a new adapter; it becomes current only if better.

        `domain` trains the adapter of that name beside core-self; with dataset="new" its
        dataset is built from the material tagged `domain` (`mem ingest --tag`).
        """
        from mem.memory.distilling.training import distill

        return distill(self, dataset, steps, epochs, domain, resume, progress)

    def adapters(self, name: str | None = None):
        """The registry of one adapter name (default core-self)."""
        from mem.memory.distilling.training import registry

        return registry(self, name)

    def export_adapter(self, version: str, fmt: str, out: str | os.PathLike, name=None):
        from mem.memory.distilling.training import export_adapter

        return export_adapter(self, version, fmt, Path(out), name)

    def status(self) -> dict:
        counts = self.corpus.counts()
        index_counts = self.index.counts()
        return {
            "home": str(self.home),
            "schema_version": self.corpus.schema_version,
            "documents": counts["documents"],
            "chunks": counts["chunks"],
            "conversations": counts["conversations"],
            "turns": counts["turns"],
            "transcripts": counts["transcripts"],
            "index": index_counts,
            "index_in_sync": index_counts["vectors"] == counts["chunks"] == index_counts["lexical"],
            "embedding_model": self.config.embedding.model,
            "llm": {"backend": self.config.llm.backend, "model": self.config.llm.model},
        }

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        if self._corpus is not None:
            self._corpus.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

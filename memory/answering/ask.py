"""Answers from memory: retrieve, gate on relevance, generate with citations, remember.

`answer()` is one `mem ask`; a `ChatSession` is `mem chat`: the same steps per turn, with
the earlier turns in the prompt and every exchange stored in one conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mem.memory.answering.llm import Backend, GenerationOptions, LLMError, Message, load_backend
from mem.memory.answering.prompting import (
    DEFAULT_ANSWER_STYLE,
    build_messages,
    check_citations,
    not_in_memory,
    tidy_answer,
    verify_citations,
)
from mem.memory.records import Answer, Source

if TYPE_CHECKING:
    from mem.index import Index
    from mem.memory.core import Memory

log = logging.getLogger(__name__)

OnToken = Callable[[str], None]

# How long remembering waits for a running ingest before it gives up (the answer stands).
REMEMBER_WAIT_S = 10.0
# Earlier exchanges a chat keeps in the prompt; older ones stay in memory, found by retrieval.
CHAT_HISTORY_EXCHANGES = 4


@dataclass(frozen=True)
class AskSettings:
    """Per-call choices, defaulting to config.toml's [llm] section."""

    backend: str | None = None
    model: str | None = None
    adapter: str | None = None
    remember: bool | None = None
    max_tokens: int | None = None
    generation: GenerationOptions | None = None  # all sampling options at once (tests, benchmarks)
    domains: tuple[str, ...] = ()  # domain adapters stacked on the current core-self one
    answer_style: str | None = None  # prompting.ANSWER_STYLES; None = [llm] answer_style


def relevance(index: Index, question: str, sources: Sequence[Source]) -> float:
    """The best similarity between the question and a retrieved chunk (or one of its
    sentences). Hybrid scores are normalised per query, so the top hit always looks good;
    this absolute similarity is what tells "memory holds nothing about it"."""
    return index.similarity(question, [s.chunk_id for s in sources])


def generation_options(memory: Memory, settings: AskSettings) -> GenerationOptions:
    if settings.generation is not None:
        return settings.generation
    c = memory.config.llm
    return GenerationOptions(
        max_tokens=settings.max_tokens or c.max_tokens, temperature=c.temperature
    )


def generate(
    backend: Backend,
    question: str,
    sources: Sequence[Source],
    options: GenerationOptions,
    history: Sequence[Message] = (),
    on_token: OnToken | None = None,
    style: str = DEFAULT_ANSWER_STYLE,
) -> Answer:
    """Stream an answer over the numbered sources; citations of no source are dropped, and
    each sentence cites the source that holds its words (prompting.verify_citations). The
    stream is the model's own text; the returned answer is the checked one."""
    pieces: list[str] = []
    for piece in backend.stream(build_messages(question, sources, history, style), options):
        pieces.append(piece)
        if on_token is not None:
            on_token(piece)
    check = check_citations(tidy_answer("".join(pieces)), len(sources))
    verified = verify_citations(check.text, sources)
    return Answer(
        question=question,
        answer=verified.text,
        sources=tuple(sources),
        adapter=backend.adapter,
        model=backend.model,
        cited=verified.cited,
        invalid_citations=check.invalid,
        model_cited=check.cited,
    )


class Answerer:
    """Holds the loaded backend, so a chat loads its model once."""

    def __init__(
        self, memory: Memory, settings: AskSettings, backend: Backend | None = None
    ) -> None:
        self.memory = memory
        self.settings = settings
        self._backend: Backend | None = backend  # already loaded (`mem serve` keeps them)

    @property
    def enabled(self) -> bool:
        s = self.settings
        if s.adapter or s.domains:
            return True
        return (s.backend or self.memory.config.llm.backend) != "none"

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            s = self.settings
            self._backend = load_backend(
                self.memory.config, s.backend, s.model, s.adapter, self.memory.home, s.domains
            )
        return self._backend

    @property
    def remembers(self) -> bool:
        r = self.settings.remember
        return self.memory.config.llm.remember if r is None else r

    def answer(
        self,
        question: str,
        sources: Sequence[Source],
        history: Sequence[Message] = (),
        on_token: OnToken | None = None,
    ) -> Answer:
        """Answer from the sources, or say memory holds nothing (without running the model).

        With earlier turns (a chat) a question may be about the conversation itself, so
        then the model still answers, from the history alone, without unrelated sources.
        """
        score = relevance(self.memory.index, question, sources)
        if score < self.memory.config.llm.min_relevance:
            if not history:
                text = not_in_memory(question)
                if on_token is not None:
                    on_token(text)
                return Answer(question, text, (), relevance=round(score, 4))
            sources = ()
        options = generation_options(self.memory, self.settings)
        style = self.settings.answer_style or self.memory.config.llm.answer_style
        found = generate(self.backend, question, sources, options, history, on_token, style)
        return replace(found, relevance=round(score, 4))

    def remember(self, conversation_id: str, answer: Answer) -> Answer:
        """Store the exchange; a busy memory (a long ingest) costs the memory, not the answer."""
        from mem.memory.answering.remember import remember
        from mem.memory.lock import LockTimeout, writer_lock

        chunking = self.memory.config.chunking
        try:
            with writer_lock(self.memory.home, "mem ask (remembering)", REMEMBER_WAIT_S):
                remember(self.memory, conversation_id, answer, chunking)
        except LockTimeout as exc:
            log.warning("this exchange was not remembered: %s", exc)
            return answer
        return replace(answer, conversation_id=conversation_id)


def ask(
    memory: Memory,
    question: str,
    k: int | None,
    settings: AskSettings,
    on_token: OnToken | None = None,
    backend: Backend | None = None,
) -> Answer:
    """One `mem ask`: sources, an answer (streamed to on_token), the exchange remembered.

    An exchange where memory held nothing is not remembered: it carries no knowledge, and
    stored it would come back as a false match the next time the same question is asked.
    """
    from mem.memory.answering.remember import ask_conversation_id

    sources = memory.retrieve(question, k)
    answerer = Answerer(memory, settings, backend)
    if not answerer.enabled:
        return Answer(question=question, answer=None, sources=tuple(sources))
    found = answerer.answer(question, sources, on_token=on_token)
    if answerer.remembers and found.model is not None:
        found = answerer.remember(ask_conversation_id(), found)
    return found


class ChatSession:
    """`mem chat`: turns that see the earlier ones, stored as one conversation."""

    def __init__(self, memory: Memory, settings: AskSettings, k: int | None = None) -> None:
        from mem.memory.answering.remember import new_chat_conversation_id

        self.memory = memory
        self.k = k
        self.answerer = Answerer(memory, settings)
        if not self.answerer.enabled:
            raise LLMError('mem chat needs an LLM; [llm] backend is "none"')
        self.conversation_id = new_chat_conversation_id()
        self.history: list[Message] = []

    def ask(self, question: str, on_token: OnToken | None = None) -> Answer:
        # This chat's own turns are already in the prompt; as sources they would only echo.
        k = self.k or self.memory.config.retrieval.k
        sources = [
            s for s in self.memory.retrieve(question, k + 4) if s.source != self.conversation_id
        ][:k]
        sources = [replace(s, rank=n) for n, s in enumerate(sources, start=1)]
        recent = self.history[-2 * CHAT_HISTORY_EXCHANGES :]
        found = self.answerer.answer(question, sources, recent, on_token)
        self.history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": found.answer or ""},
        ]
        if self.answerer.remembers and found.model is not None:
            found = self.answerer.remember(self.conversation_id, found)
        return found

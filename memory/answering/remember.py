"""Remembering answers: every `mem ask` / `mem chat` exchange becomes conversation turns.

They are stored and chunked exactly like an imported chat log (corpus conversations and
turns, chunks of whole turns cited as «title» · turns 3–4 · date, indexed at once), so a
later question finds today's answer and the nightly novelty scorer sees it like any chat.

One conversation per local day for `mem ask`: single questions asked on one day are usually
one line of work, a day reads well as a citation («mem ask 2025-03-01» · turns 5–6), and
thousands of two-turn conversations would be noise in `mem conversations`. One conversation
per session for `mem chat`, because there the turns do depend on each other.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from mem.corpus.records import Chunk, Conversation, Document, Turn, make_chunk_id, utc_now
from mem.ingest.chunking import ChunkingOptions
from mem.ingest.conversations import chunk_turns, turn_locator
from mem.memory.records import Answer

if TYPE_CHECKING:
    from mem.memory.core import Memory

ASK_FORMAT = "mem-ask"
CHAT_FORMAT = "mem-chat"


def ask_conversation_id(day: str | None = None) -> str:
    return f"{ASK_FORMAT}:{day or datetime.now().strftime('%Y-%m-%d')}"


def new_chat_conversation_id() -> str:
    return f"{CHAT_FORMAT}:{datetime.now().strftime('%Y-%m-%dT%H%M%S')}-{secrets.token_hex(3)}"


def exchange_meta(answer: Answer) -> dict:
    """What the assistant turn keeps besides its text: which sources, which model."""
    return {
        "sources": [
            {"rank": s.rank, "chunk_id": s.chunk_id, "source": s.source, "locator": s.locator}
            for s in answer.sources
        ],
        "cited": list(answer.cited),
        "model": answer.model,
        "adapter": answer.adapter,
    }


def remember(
    memory: Memory, conversation_id: str, answer: Answer, chunking: ChunkingOptions
) -> Conversation:
    """Append one exchange (question + answer) to a conversation; store, chunk and index it.

    The caller holds the writer lock. The whole conversation is re-chunked: turns are packed
    greedily from the first, so earlier chunks keep their ids and only the last one changes;
    only new or changed chunks are embedded.
    """
    corpus, index = memory.corpus, memory.index
    kind = conversation_id.split(":", 1)[0]
    stored = corpus.conversation_turns(conversation_id)
    turns: list[Turn] = [t for t in stored if t.branch == 0]
    now = utc_now()
    n = len(turns)
    turns += [
        Turn(n, "user", "", answer.question, now, f"{conversation_id}:{n}"),
        Turn(
            n + 1,
            "assistant",
            "",
            answer.answer or "",
            now,
            f"{conversation_id}:{n + 1}",
            exchange_meta(answer),
        ),
    ]
    label = conversation_id.split(":", 1)[1]
    title = f"mem ask {label}" if kind == ASK_FORMAT else f"mem chat {label}"
    conversation = Conversation(conversation_id, title, kind, turns[0].timestamp, tuple(turns))
    source = conversation_id  # the "path as ingested" its citations show (mem-ask:2025-03-01)
    scope = f"conversation:{conversation_id}"
    chunks = []
    for span in chunk_turns(turns, chunking):
        position = span.first
        chunks.append(
            Chunk(
                chunk_id=make_chunk_id(scope, span.text, position),
                source=source,
                position=position,
                text=span.text,
                title=title,
                locator=turn_locator(title, span),
                meta={
                    "conversation_id": conversation_id,
                    "turns": [span.first, span.last],
                    "branch": 0,
                    "date": span.date,
                    "context": title,
                },
            )
        )
    before = {c.chunk_id for c in corpus.chunks_of(source)}
    document = Document(
        source=source,
        content_hash=make_chunk_id(scope, "".join(t.text for t in turns), len(turns)),
        kind=f"chat:{kind}",
        title=title,
        n_chunks=len(chunks),
        ingested_at=now,
        size=sum(len(t.text.encode()) for t in turns),
    )
    stale = corpus.replace_document(document, chunks, conversations=[conversation])
    index.delete(stale)
    index.add([c for c in chunks if c.chunk_id not in before])
    return conversation


NOTE_FORMAT = "mem-note"


def new_note_id() -> str:
    return f"{NOTE_FORMAT}:{datetime.now().strftime('%Y-%m-%dT%H%M%S')}-{secrets.token_hex(3)}"


def remember_note(memory: Memory, text: str, title: str, chunking: ChunkingOptions) -> Document:
    """Store a note (text a client hands over, not a file) as a document of its own.

    It is chunked as Markdown, cited by its title and headings, and stored corpus first,
    index second, as an ingested file is. The caller holds the writer lock.
    """
    from pathlib import Path

    from mem.ingest import read_file
    from mem.memory.ingesting import to_chunks

    source = new_note_id()
    title = title.strip() or " ".join(text.split()[:8])
    body = text if text.lstrip().startswith("#") else f"# {title}\n\n{text}"
    result = read_file(Path("note.md"), body.encode("utf-8"), chunking)
    chunks = to_chunks(source, result)
    document = Document(
        source=source,
        content_hash=make_chunk_id(source, body, 0),
        kind="note",
        title=title,
        n_chunks=len(chunks),
        ingested_at=utc_now(),
        size=len(body.encode()),
    )
    memory.corpus.replace_document(document, chunks)
    memory.index.add(chunks)
    return document

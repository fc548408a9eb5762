"""How much does the embedder prefer its question's language, and what offset undoes it?

    python benchmarks/language_bias.py [gap] [offsets]

gap: for the configured embedder, on XQuAD (the same 240 paragraphs in English and Russian),
how much lower a question scores the answer paragraph's translation than the paragraph
itself, and how much lower it scores other-language paragraphs on average (the background
gap). `[retrieval] cross_language_offset` should sit near the background gap and below the
answer gap, so that a question's own language still wins between two equal passages.

offsets: hybrid R@1/R@5 in the two haystacks where languages compete, for several offsets:
English questions over the Russian paragraphs among English chat windows (the offset must be
large enough), and Russian questions over the Russian paragraphs with their English
translations among the distractors (a translation is a miss here: too large an offset
ranks it first). Needs the homes benchmarks/retrieval_xquad.py --only-haystack builds.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import OUT, need_shared, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OFFSETS = (0.0, 0.02, 0.03, 0.04, 0.05, 0.06)


def gap() -> None:
    from mem.memory import Memory

    memory = Memory(OUT / "home-ru")  # only for its configured embedder
    embedder = memory.index.embedder
    paragraphs = {lang: xquad(lang)[0] for lang in ("en", "ru")}
    vectors = {lang: embedder.embed_passages(p) for lang, p in paragraphs.items()}
    print(f"embedder {memory.config.embedding.model}: similarity lost across languages")
    for lang, other in (("en", "ru"), ("ru", "en")):
        questions = xquad(lang)[1][::4]
        q = np.vstack([embedder.embed_query(x.question) for x in questions])
        rows = [x.paragraph for x in questions]
        same = np.einsum("ij,ij->i", q, vectors[lang][rows])
        translated = np.einsum("ij,ij->i", q, vectors[other][rows])
        answer_gap = same - translated
        background = (q @ vectors[lang].T).mean(axis=1) - (q @ vectors[other].T).mean(axis=1)
        print(
            f"  {lang} questions ({len(questions)}): answer vs its translation "
            f"median {np.median(answer_gap):.3f} (p10 {np.percentile(answer_gap, 10):.3f}), "
            f"background median {np.median(background):.3f}"
        )
    memory.close()


def offsets() -> None:
    from mem.memory import Memory

    cases = (
        ("home-ru-haystack", "en", "English q, ru paragraphs + English chats"),
        ("home-ru-haystack-en", "ru", "Russian q, ru paragraphs + en translations + chats"),
    )
    for home, question_lang, label in cases:
        if not (OUT / home / "corpus.db").exists():
            sys.exit(f"{OUT / home} missing: run benchmarks/retrieval_xquad.py --only-haystack")
        memory = Memory(OUT / home)
        questions = xquad(question_lang)[1][::3]
        print(f"{label}: {len(questions)} questions, hybrid")
        settings = memory.index.settings
        for offset in OFFSETS:
            memory.index.settings = replace(settings, cross_language_offset=offset)
            r1 = r5 = 0
            for q in questions:
                names = [Path(s.source).name for s in memory.retrieve(q.question, 5)]
                want = f"p{q.paragraph:03d}.txt"
                r1 += names[:1] == [want]
                r5 += want in names
            n = len(questions)
            print(f"  offset {offset:.2f}   R@1 {r1 / n:.3f}   R@5 {r5 / n:.3f}", flush=True)
        memory.close()


def main() -> None:
    need_shared()
    parts = sys.argv[1:] or ["gap", "offsets"]
    for part in parts:
        {"gap": gap, "offsets": offsets}[part]()


if __name__ == "__main__":
    main()

"""Retrieval quality on XQuAD: lexical-only, dense-only and hybrid, in one run.

Settings: ru (Russian questions, Russian paragraphs), en (English / English), cross (English
questions over the Russian paragraphs). Each also in a "haystack" variant where the 240
paragraphs hide among 10k+ distractor chunks from a real ChatGPT export (plus, for ru and en,
the other language's paragraphs). A hit: a returned chunk comes from the paragraph the
question was written for; "strict" also needs the answer text inside the chunk.

    python benchmarks/retrieval_xquad.py [--quick]

Homes are kept in benchmarks/out/ so a re-run only re-embeds what changed.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common import OUT, add_distractors, distractor_windows, need_shared, write_paragraphs, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_home(name: str, corpus_lang: str, haystack: bool, windows, other_lang: str | None):
    from mem.memory import Memory

    paragraphs, _ = xquad(corpus_lang)
    folder = OUT / f"xquad-{corpus_lang}"
    write_paragraphs(folder, paragraphs, "p")
    memory = Memory(OUT / name)
    memory.ingest([folder], progress=True)
    if haystack:
        add_distractors(memory, windows)
        if other_lang:
            other, _ = xquad(other_lang)
            other_folder = OUT / f"xquad-{other_lang}-as-distractors"
            write_paragraphs(other_folder, other, "x")
            memory.ingest([other_folder], progress=True)
    return memory


def evaluate(memory, questions, mode: str) -> dict[str, float]:
    r1 = r5 = strict5 = rr = 0.0
    for q in questions:
        sources = memory.retrieve(q.question, 5, mode=mode)
        names = [Path(s.source).name for s in sources]
        want = f"p{q.paragraph:03d}.txt"
        if want in names:
            rank = names.index(want) + 1
            r5 += 1
            rr += 1 / rank
            r1 += rank == 1
            strict5 += any(q.answer in s.text for s in sources if Path(s.source).name == want)
    n = len(questions)
    return {"R@1": r1 / n, "R@5": r5 / n, "strict R@5": strict5 / n, "MRR": rr / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every 5th question only")
    parser.add_argument("--no-haystack", action="store_true")
    parser.add_argument("--only-haystack", action="store_true")
    parser.add_argument(
        "--settings", default="ru,en,cross", help="Comma-separated subset of ru,en,cross."
    )
    args = parser.parse_args()
    need_shared()
    OUT.mkdir(parents=True, exist_ok=True)
    windows = [] if args.no_haystack else distractor_windows()
    settings = {"ru": ("ru", "ru", "en"), "en": ("en", "en", "ru"), "cross": ("ru", "en", None)}
    rows = []
    variants = (False,) if args.no_haystack else (True,) if args.only_haystack else (False, True)
    chosen = {k: v for k, v in settings.items() if k in args.settings.split(",")}
    for haystack in variants:
        for setting, (corpus_lang, question_lang, other) in chosen.items():
            name = f"home-{corpus_lang}" + (
                "-haystack" + ("-" + other if other else "") if haystack else ""
            )
            memory = build_home(name, corpus_lang, haystack, windows, other)
            _, questions = xquad(question_lang)
            if args.quick:
                questions = questions[::5]
            n_chunks = memory.corpus.counts()["chunks"]
            for mode in ("lexical", "dense", "hybrid"):
                started = time.perf_counter()
                metrics = evaluate(memory, questions, mode)
                ms = (time.perf_counter() - started) / len(questions) * 1000
                rows.append(
                    (setting, "haystack" if haystack else "clean", n_chunks, mode, metrics, ms)
                )
                print(_row(rows[-1]), flush=True)
            memory.close()
    print("\nsetting  corpus    chunks  mode     R@1    R@5    strict  MRR    ms/q")
    for row in rows:
        print(_row(row))


def _row(row) -> str:
    setting, variant, n, mode, m, ms = row
    return (
        f"{setting:8} {variant:9} {n:6}  {mode:8} {m['R@1']:.3f}  {m['R@5']:.3f}  "
        f"{m['strict R@5']:.3f}   {m['MRR']:.3f}  {ms:5.1f}"
    )


if __name__ == "__main__":
    main()

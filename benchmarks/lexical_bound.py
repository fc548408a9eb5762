"""What `[retrieval] lexical_max_rows` costs in quality, and what it saves in time.

Bounded BM25 (index/lexical.py) lets the rarest query terms pick the candidate rows once the
terms are in more than max_rows rows; a row holding only the frequent terms is then not found.
This compares bounded with exact BM25 (max_rows 0) on the same index, query by query:

* **xquad**: the 240 XQuAD paragraphs of one language hidden among the real ChatGPT export's
  10k+ word windows and the other language's paragraphs (as retrieval_xquad.py's haystack
  rows), asked XQuAD's human questions. Only the lexical index is built (no encoder), so it
  runs in a minute. R@1 / R@5: the question's paragraph among the top 1 / 5.
* **synthetic N** (`--synthetic 1000000`): the lexical index of benchmarks/scale.py's home of
  N chunks (built there), asked scale.py's queries (5 words of one chunk); a hit is that chunk.

For each bound: R@1, R@5, the share of the exact top 50 (what hybrid fusion takes from BM25,
[retrieval] candidates) the bounded search returns, the share of queries where the bound
engaged, and p50 / p95 latency.

    python benchmarks/lexical_bound.py                       # xquad ru and en
    python benchmarks/lexical_bound.py --synthetic 1000000   # after scale.py built that home
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import OUT, distractor_windows, need_shared, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BOUNDS = (0, 20000, 10000, 5000, 2000)
TOP = 50


def xquad_index(lang: str, other: str):
    """(lexical index, [(question, wanted chunk id)]) for one language's haystack."""
    from mem.index.lexical import LexicalIndex

    path = OUT / "lexical-bound" / f"xquad-{lang}.db"
    paragraphs, questions = xquad(lang)
    done = path.with_suffix(".built")
    index = LexicalIndex(path)
    if not done.exists():
        others, _ = xquad(other)
        windows = [text for _, text in distractor_windows()]
        ids = [f"p{i}" for i in range(len(paragraphs))] + [f"x{i}" for i in range(len(others))]
        ids += [f"w{i}" for i in range(len(windows))]
        texts = paragraphs + others + windows
        languages = [lang] * len(paragraphs) + [other] * len(others) + ["?"] * len(windows)
        for start in range(0, len(ids), 2000):
            rows = slice(start, start + 2000)
            index.add(ids[rows], texts[rows], languages[rows])
        done.write_text(str(len(ids)))
    return index, [(q.question, f"p{q.paragraph}") for q in questions]


def synthetic_index(n: int):
    """The lexical index of scale.py's home of n chunks and its queries' source chunks."""
    import numpy as np
    import scale

    from mem.corpus.records import make_chunk_id
    from mem.index.lexical import LexicalIndex

    home = scale.HERE / f"home-{n}"
    if not (home / "built").exists():
        sys.exit(f"{home} is not built: run `python benchmarks/scale.py --sizes {n}` first")
    texts, _, _ = scale.synthetic(n)
    rows = np.random.default_rng(1).choice(n, size=scale.QUERIES + scale.WARM, replace=False)
    asked = scale.queries(n, count=scale.QUERIES + scale.WARM)
    wanted = []
    for row in rows:  # the ids scale.build gave each chunk
        first = row - row % scale.CHUNKS_PER_DOCUMENT
        source = f"/scale/doc-{first // scale.CHUNKS_PER_DOCUMENT:06d}.txt"
        wanted.append(make_chunk_id(source, texts[row], int(row - first)))
    return LexicalIndex(home / "index" / "lexical.db"), [
        (text, want) for (text, _), want in zip(asked, wanted, strict=True)
    ]


def engaged(index, query: str, max_rows: int) -> bool:
    """Whether the bound changes how this query is searched (its terms' rows exceed it)."""
    from mem.index.lexical import analyze

    stems = sorted(set(analyze(query)))
    docs = index._docs(stems) if len(stems) > 1 else {}
    return bool(docs) and sum(docs.values()) > max_rows


def compare(index, asked: list[tuple[str, str]]) -> list[dict]:
    exact = [[c for c, _, _ in index.search(q, TOP)] for q, _ in asked]
    rows = []
    for bound in BOUNDS:
        times, r1, r5, overlap, bitten = [], 0, 0, 0.0, 0
        for (query, want), full in zip(asked, exact, strict=True):
            started = time.perf_counter()
            found = [c for c, _, _ in index.search(query, TOP, max_rows=bound)]
            times.append(time.perf_counter() - started)
            r1 += found[:1] == [want]
            r5 += want in found[:5]
            overlap += len(set(found) & set(full)) / max(len(full), 1)
            bitten += bound > 0 and engaged(index, query, bound)
        times.sort()
        k = len(asked)
        rows.append(
            {
                "max_rows": bound,
                "R@1": r1 / k,
                "R@5": r5 / k,
                "top50_kept": overlap / k,
                "engaged": bitten / k,
                "p50_ms": statistics.median(times) * 1e3,
                "p95_ms": times[int(0.95 * (k - 1))] * 1e3,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=0, metavar="N")
    args = parser.parse_args()
    sets = []
    if args.synthetic:
        sets.append((f"synthetic {args.synthetic:,}", synthetic_index(args.synthetic)))
    else:
        need_shared()
        (OUT / "lexical-bound").mkdir(parents=True, exist_ok=True)
        sets += [("xquad ru haystack", xquad_index("ru", "en"))]
        sets += [("xquad en haystack", xquad_index("en", "ru"))]
    print(
        "| set | rows | max_rows | R@1 | R@5 | exact top-50 kept | bound engaged | p50 / p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (index, asked) in sets:
        for q, _ in asked[:10]:  # warm the page cache
            index.search(q, TOP)
        for r in compare(index, asked):
            print(
                f"| {name} | {index.count():,} | {r['max_rows'] or 'exact'} | {r['R@1']:.3f} "
                f"| {r['R@5']:.3f} | {r['top50_kept']:.3f} | {r['engaged']:.2f} "
                f"| {r['p50_ms']:.1f} / {r['p95_ms']:.1f} |",
                flush=True,
            )
        index.close()
    print(f"{os.cpu_count()} cores, 1-minute load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Cross-lingual retrieval in a mixed-language memory: does an English question still find
the Russian paragraph when English chat material surrounds it?

    python benchmarks/language_bias.py   (needs the home retrieval_xquad.py builds for the
                                          cross haystack: benchmarks/out/home-ru-haystack)

Dense retrieval over the chunk vectors, three ways, R@5 on every 6th English XQuAD question:
the plain top 5; top 50 per passage language with scores standardised within each language
before merging (multilingual-e5 scores same-language pairs higher, so same-language
distractors bury a cross-language answer); and the Russian pool alone (the upper bound).
An experiment for the retrieval issue, not yet what `mem ask` does.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from common import OUT, need_shared, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    need_shared()
    from mem.memory import Memory

    home = OUT / "home-ru-haystack"
    if not (home / "corpus.db").exists():
        sys.exit(f"{home} missing: run benchmarks/retrieval_xquad.py --only-haystack first")
    memory = Memory(home)
    collection = memory.index.vectors._collection
    source = {c.chunk_id: c.source for c in memory.corpus.iter_chunks()}
    _, questions = xquad("en")
    questions = questions[::6]

    def hit(ids: list[str], paragraph: int) -> bool:
        return any(source.get(i, "").endswith(f"p{paragraph:03d}.txt") for i in ids)

    plain = balanced = russian = 0
    for q in questions:
        vector = memory.index.query_vector(q.question)
        top = collection.query(query_embeddings=[vector], n_results=5, include=["distances"])
        plain += hit(top["ids"][0], q.paragraph)
        merged, pools = [], {}
        for lang in ("ru", "en"):
            found = collection.query(
                query_embeddings=[vector],
                n_results=50,
                where={"language": lang},
                include=["distances"],
            )
            scores = 1 - np.array(found["distances"][0])
            pools[lang] = found["ids"][0]
            z = (scores - scores.mean()) / (scores.std() + 1e-6)
            merged += list(zip(found["ids"][0], z, strict=True))
        merged.sort(key=lambda pair: -pair[1])
        balanced += hit([i for i, _ in merged[:5]], q.paragraph)
        russian += hit(pools["ru"][:5], q.paragraph)
    memory.close()
    n = len(questions)
    print(f"cross haystack, {n} English questions, dense R@5:")
    print(f"  plain top 5                      {plain / n:.3f}")
    print(f"  per-language standardised merge  {balanced / n:.3f}")
    print(f"  Russian pool only (upper bound)  {russian / n:.3f}")


if __name__ == "__main__":
    main()

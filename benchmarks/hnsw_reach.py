"""Can Chroma's HNSW graph still reach chunks added before a large batch? A known problem.

Takes the en haystack home that `retrieval_xquad.py --engine torch` builds (its 243 XQuAD
paragraph chunks, then 10,766 distractor windows from the ChatGPT export), copies their
vectors into fresh Chroma collections in different orders and settings, and counts how many
vectors find themselves among the 5 nearest: a vector that does not is unreachable for dense
search, though Chroma holds it.

    python benchmarks/hnsw_reach.py [HOME]
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
from common import OUT


def main() -> None:
    import chromadb

    from mem.memory import Memory

    home = sys.argv[1] if len(sys.argv) > 1 else OUT / "home-en-haystack-ru-torch"
    with Memory(home) as memory:
        chunks = list(memory.corpus.iter_chunks())
        first = [c.chunk_id for c in chunks if "xquad-en" in c.source]
        later = [c.chunk_id for c in chunks if "xquad" not in c.source]
        stored = memory.index.vectors.vectors(first + later)
    vectors = {i: np.asarray(v, dtype=np.float32) for i, v in stored.items()}
    print(f"chromadb {chromadb.__version__}: {len(first)} paragraphs, {len(later)} windows")

    def reach(label: str, metadata: dict, order: list[tuple[list[str], int]]) -> None:
        client = chromadb.PersistentClient(path=tempfile.mkdtemp())
        collection = client.get_or_create_collection("reach-test", metadata=metadata)
        for ids, batch in order:
            for start in range(0, len(ids), batch):
                part = ids[start : start + batch]
                collection.add(ids=part, embeddings=np.stack([vectors[i] for i in part]))
        sample = later[::50]
        counts = []
        for ids in (first, sample):
            found = 0
            for i in ids:
                hits = collection.query(query_embeddings=vectors[i][None], n_results=5)["ids"][0]
                found += i in hits
            counts.append(f"{found}/{len(ids)}")
        print(f"  {label:44} paragraphs {counts[0]:8} windows {counts[1]}", flush=True)

    cosine = {"hnsw:space": "cosine"}
    reach("paragraphs (64 a batch), then windows (512)", cosine, [(first, 64), (later, 512)])
    reach("windows first, then paragraphs", cosine, [(later, 512), (first, 64)])
    reach(
        "paragraphs first, M=32, construction_ef=200",
        {**cosine, "hnsw:M": 32, "hnsw:construction_ef": 200},
        [(first, 64), (later, 512)],
    )


if __name__ == "__main__":
    main()

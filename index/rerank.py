"""Optional cross-encoder rerank of the fused top candidates (only when a model is configured)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=2)
def _load(model: str):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(model, device="cpu")


def rerank_scores(model: str, query: str, texts: Sequence[str]) -> list[float]:
    """Relevance of each text to the query, higher is better."""
    if not texts:
        return []
    scores = _load(model).predict([(query, t) for t in texts], show_progress_bar=False)
    return [float(s) for s in scores]

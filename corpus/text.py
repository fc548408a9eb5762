"""Text helpers that both ingest (chunking) and index (sentence vectors) use; they live
here because those two layers must not import each other."""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … followed by space and a capital (Latin or Cyrillic) or digit,
# optionally behind an opening quote or bracket.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"«(\[]?[A-ZА-ЯЁ0-9])")


def split_sentences(text: str, min_words: int = 1) -> list[str]:
    """The sentences of `text` that have at least `min_words` words (blank ones never)."""
    return [s for s in _SENTENCE_END.split(text) if len(s.split()) >= min_words]

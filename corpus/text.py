"""Text helpers that several layers use (ingest's chunking, index's sentence vectors, the
distill teacher's grounding check, the adapters' control scoring); they live here because
those layers must not import each other."""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … followed by space and a capital (Latin or Cyrillic) or digit,
# optionally behind an opening quote or bracket.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"«(\[]?[A-ZА-ЯЁ0-9])")


def split_sentences(text: str, min_words: int = 1) -> list[str]:
    """The sentences of `text` that have at least `min_words` words (blank ones never)."""
    return [s for s in _SENTENCE_END.split(text) if len(s.split()) >= min_words]


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-case words (ё read as е), punctuation dropped."""
    return _WORD.findall(text.lower().replace("ё", "е"))


def said_in(word: str, others: set[str]) -> bool:
    """`word` occurs among `others` (lower-case words): numbers exactly, other words up to
    an ending of two or three letters ("полонии" is "полония", "синего" is "синий", "год" is
    "году"); words under three letters only exactly ("au" is not "august")."""
    if any(ch.isdigit() for ch in word):
        return word in others
    return any(_same_word(word, other) for other in others)


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if len(short) < 3:
        return False
    shared = next((i for i, ch in enumerate(short) if long[i] != ch), len(short))
    if shared < max(3, len(short) - 2):
        return False
    return len(short) >= 5 or len(long) - len(short) <= 2  # "сто" is not "столица"

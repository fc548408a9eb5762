"""Novelty: what a new chunk adds to memory, how important it looks, and whether it repeats.

novelty    = 1 - max cosine similarity to every earlier item outside its own group
             (exact, block-wise over the stored vectors: no index approximation, no re-embedding)
duplicate  = the earliest item whose MinHash Jaccard estimate reaches DUPLICATE_JACCARD
importance = length, questions answered, the user's own statements vs boilerplate

Scores depend on arrival order only, so scoring after every ingest gives the same numbers as
scoring everything at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from mem.distill import minhash
from mem.distill.records import Item, ItemScore

DUPLICATE_JACCARD = 0.8
_BLOCK = 256  # rows of the similarity matrix computed at once (256 x N floats)

_WORD = re.compile(r"\w+", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# Turns that carry nothing to learn: greetings, thanks, "go on", stock assistant phrases.
_STOCK = re.compile(
    r"^\W*(hi|hello|hey|thanks?( you)?|thx|ok(ay)?|yes|no|sure|continue|go on|great|cool|"
    r"привет|здравствуйте|спасибо|благодарю|ок|ага|да|нет|продолжай|дальше|хорошо|отлично)"
    r"\W*$",
    re.IGNORECASE,
)
_ASSISTANT_STOCK = re.compile(
    r"(as an ai( language model)?|i hope this helps|let me know if you (have|need)|"
    r"feel free to ask|как ии|надеюсь, это поможет|если у вас есть (ещё|еще) вопросы)",
    re.IGNORECASE,
)


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def importance(item: Item) -> tuple[float, dict]:
    """0..1 and the signals behind it (shown by `mem novelty`)."""
    words = _words(item.text)
    chars = [c for c in item.text if not c.isspace()]
    letters = len(_LETTER.findall(item.text))
    letter_share = letters / len(chars) if chars else 0.0
    # Saturates near 150 words: a long chunk is not worth more than a full paragraph.
    length = min(1.0, math.log1p(words) / math.log1p(150))
    signals: dict = {"words": words, "letter_share": round(letter_share, 2)}
    if item.turns:
        asked = answered = statement_words = stock = 0
        for n, (role, text) in enumerate(item.turns):
            if role == "user":
                if _STOCK.match(text):
                    stock += 1
                elif "?" in text:
                    asked += 1
                    following = item.turns[n + 1] if n + 1 < len(item.turns) else None
                    if following and following[0] == "assistant" and _words(following[1]) >= 15:
                        answered += 1
                else:
                    statement_words += _words(text)
            elif _ASSISTANT_STOCK.search(text):
                stock += 1
        substance = 0.5 * min(1.0, answered) + 0.5 * min(1.0, statement_words / 40)
        boilerplate = stock / len(item.turns)
        signals |= {
            "questions": asked,
            "questions_answered": answered,
            "user_statement_words": statement_words,
            "stock_turns": stock,
        }
    else:
        # Documents: prose (sentences of five words or more) over lists, tables, code.
        sentences = [s for s in re.split(r"(?<=[.!?…])\s+|\n", item.text) if s.strip()]
        prose = sum(_words(s) for s in sentences if _words(s) >= 5)
        substance = prose / words if words else 0.0
        boilerplate = 0.0
        signals["prose_share"] = round(substance, 2)
    if letter_share < 0.5:  # mostly code, numbers or markup
        boilerplate = max(boilerplate, 1.0 - letter_share)
    value = 0.4 * length + 0.4 * substance + 0.2 * (1.0 - boilerplate)
    signals["boilerplate"] = round(boilerplate, 2)
    return round(min(1.0, max(0.0, value)), 4), signals


def _ranks(items: Sequence[Item]) -> np.ndarray:
    order = sorted(range(len(items)), key=lambda i: (items[i].order, items[i].item_id))
    ranks = np.empty(len(items), dtype=np.int64)
    ranks[order] = np.arange(len(items))
    return ranks


def dense_novelty(
    items: Sequence[Item], vectors: np.ndarray, targets: Sequence[int]
) -> list[tuple[float, int | None]]:
    """(1 - max similarity, index of the nearest earlier item outside the group) per target."""
    ranks = _ranks(items)
    group_ids: dict[str, int] = {}
    groups = np.array([group_ids.setdefault(it.group, len(group_ids)) for it in items])
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1, norms)
    out: list[tuple[float, int | None]] = []
    for start in range(0, len(targets), _BLOCK):
        rows = np.asarray(targets[start : start + _BLOCK])
        sims = vectors[rows] @ vectors.T
        hidden = (groups[None, :] == groups[rows][:, None]) | (
            ranks[None, :] >= ranks[rows][:, None]
        )
        sims[hidden] = -np.inf
        best = sims.argmax(axis=1)
        for r, b in enumerate(best):
            top = float(sims[r, b])
            out.append((1.0, None) if top == -np.inf else (max(0.0, 1.0 - top), int(b)))
    return out


def near_duplicates(
    items: Sequence[Item], signatures: Sequence[np.ndarray], targets: Sequence[int]
) -> dict[int, tuple[int, float]]:
    """target -> (earliest earlier item it nearly duplicates, Jaccard estimate)."""
    ranks = _ranks(items)
    wanted = set(targets)
    found: dict[int, tuple[int, float]] = {}
    for a, b in minhash.candidate_pairs(signatures):
        later, earlier = (a, b) if ranks[a] > ranks[b] else (b, a)
        if later not in wanted:
            continue
        jaccard = minhash.similarity(signatures[a], signatures[b])
        if jaccard < DUPLICATE_JACCARD:
            continue
        if later not in found or ranks[earlier] < ranks[found[later][0]]:
            found[later] = (earlier, jaccard)
    return found


def score_items(
    items: Sequence[Item],
    vectors: np.ndarray,
    targets: Sequence[int],
    signatures: dict[int, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ItemScore]:
    """Score items[targets] against all items (vectors row-aligned with items).

    `signatures` may hold stored MinHash signatures by item index; the rest are computed.
    """
    signatures = dict(signatures or {})
    for i, item in enumerate(items):
        if i not in signatures:
            signatures[i] = minhash.signature(item.text)
    sigs = [signatures[i] for i in range(len(items))]
    dense = dense_novelty(items, vectors, targets)
    duplicates = near_duplicates(items, sigs, targets)
    scores = []
    for target, (novelty, nearest) in zip(targets, dense, strict=True):
        item = items[target]
        weight, signals = importance(item)
        duplicate = duplicates.get(target)
        if nearest is not None:
            signals["nearest"] = items[nearest].item_id
            signals["similarity"] = round(1.0 - novelty, 4)
        if duplicate:
            signals["jaccard"] = round(duplicate[1], 3)
        scores.append(
            ItemScore(
                item_id=item.item_id,
                novelty=round(novelty, 4),
                duplicate_of=items[duplicate[0]].item_id if duplicate else None,
                importance=weight,
                signals=signals,
                minhash=minhash.to_bytes(sigs[target]),
            )
        )
        if progress:
            progress(1)
    return scores

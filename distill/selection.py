"""Selection: the novel material since the last distillation, plus a replay mix of older memory.

A LoRA trained only on what is new drifts away from what it learned before; mixing a share
of older high-value items back in ("replay") is the cheap remedy.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mem.distill.options import DistillOptions
from mem.distill.records import ItemScore


@dataclass
class Selection:
    fresh: list[ItemScore] = field(default_factory=list)
    replay: list[ItemScore] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count, among fresh items

    @property
    def items(self) -> list[ItemScore]:
        return self.fresh + self.replay


def rejection(score: ItemScore, options: DistillOptions) -> str | None:
    """Why an item would not be distilled, or None if it would."""
    if score.duplicate_of:
        return "near-duplicate"
    if score.novelty < options.threshold:
        return "not novel"
    if score.importance < options.min_importance:
        return "unimportant"
    return None


def replay_count(fresh: int, share: float) -> int:
    """How many replayed items make them `share` of the whole selection."""
    if fresh == 0 or share <= 0:
        return 0
    share = min(share, 0.9)
    return round(fresh * share / (1.0 - share))


def select(
    fresh: Sequence[ItemScore], older: Sequence[ItemScore], options: DistillOptions
) -> Selection:
    """Fresh items that pass, best first; replay drawn from the best older items."""
    selection = Selection()
    for score in fresh:
        reason = rejection(score, options)
        if reason:
            selection.skipped[reason] += 1
        else:
            selection.fresh.append(score)
    selection.fresh.sort(key=lambda s: (-s.value, s.item_id))
    wanted = replay_count(len(selection.fresh), options.replay_share)
    pool = [s for s in older if not s.duplicate_of and s.importance >= options.min_importance]
    pool.sort(key=lambda s: (-s.value, s.item_id))
    # Sample from the best three times as many as needed, so replay varies between runs
    # (a different seed) but stays among the valuable items.
    pool = pool[: 3 * wanted]
    selection.replay = sorted(
        random.Random(options.seed).sample(pool, min(wanted, len(pool))),
        key=lambda s: (-s.value, s.item_id),
    )
    return selection

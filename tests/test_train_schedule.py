"""Batches by length: every example once per epoch, deterministic, far less padding."""

from __future__ import annotations

import random

from mem.adapters.train import LoraOptions, schedule


def _padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_length_batching_keeps_epochs_whole_and_cuts_padding():
    rng = random.Random(5)
    # Reader examples (~1,000 tokens) among short questions (~120), as a dataset mixes them.
    lengths = [rng.choice([rng.randint(900, 1030), rng.randint(80, 160)]) for _ in range(203)]
    options = LoraOptions(batch_size=4, grad_accum=1, epochs=2.0)
    steps, batches = schedule(len(lengths), options, lengths)
    plain_steps, plain = schedule(len(lengths), options)
    assert steps == plain_steps == 102 and len(batches) == len(plain)
    per_epoch = 51
    for epoch in (batches[:per_epoch], batches[per_epoch:]):
        assert sorted(i for b in epoch for i in b) == list(range(203))
    assert batches[:per_epoch] != batches[per_epoch:]  # each epoch its own order
    assert schedule(len(lengths), options, lengths) == (steps, batches)  # resumable
    assert _padded_tokens(batches, lengths) < 0.75 * _padded_tokens(plain, lengths)

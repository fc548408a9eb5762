"""Speed of answers with the default local backend, against plain llama-cpp-python.

    python benchmarks/llm_speed.py [--runs 5] [--max-tokens 128] [--model qwen2.5-0.5b]

(--model: a packaged short name or a .gguf path; default: config.toml's [llm] model.)

In one run, on the same prompt (the one `mem ask` builds for the question over the shipped
examples) with greedy decoding:

1. plain: `llama_cpp.Llama(...).create_chat_completion(stream=True)`, nothing of mem around it;
2. backend: mem's LocalBackend.stream (the model runtime plus mem's backend layer);
3. mem ask: `Memory.ask(..., llm=True)` end to end, time-to-first-token counted from the call
   (so it includes retrieval, the relevance check and prompt building), not remembered.

Time to first token (TTFT) is from the request to the first streamed text, with llama.cpp's
prompt cache reset before each call (a new question is evaluated in full); tokens/s is the
generated tokens (counted with the model's tokenizer) after the first one, divided by the
time after the first one. Medians over the runs, after one warm-up round; the three are
interleaved so that other load on the machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
QUESTION = "How do I make a Python package installable?"


def measure(
    stream: Callable[[], Iterator[str]], count: Callable[[str], int]
) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    pieces = []
    for piece in stream():
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    assert first is not None, "nothing was generated"
    tokens = count("".join(pieces))
    rate = (tokens - 1) / (end - first) if tokens > 1 and end > first else float("nan")
    return first - started, rate


def report(name: str, results: list[tuple[float, float]]) -> tuple[float, float]:
    ttft = statistics.median(r[0] for r in results)
    rate = statistics.median(r[1] for r in results)
    print(f"  {name:28} TTFT {ttft * 1000:7.1f} ms   {rate:7.1f} tokens/s")
    return ttft, rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("-k", type=int, default=3, help="sources in the prompt")
    parser.add_argument("--threads", type=int, default=0, help="0 = llama.cpp's default")
    parser.add_argument("--model", default=None, help="default: [llm] model of config.toml")
    args = parser.parse_args()

    import llama_cpp

    from mem.memory import Memory
    from mem.memory.answering.ask import AskSettings
    from mem.memory.answering.llm import GenerationOptions, LocalBackend, resolve_gguf
    from mem.memory.answering.prompting import build_messages
    from mem.memory.config import LLMSection

    model = args.model or LLMSection().model
    home = OUT / "llm-speed-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        f"[llm]\nmax_tokens = {args.max_tokens}\ntemperature = 0.0\nthreads = {args.threads}\n"
        f'remember = false\nmodel = "{model}"\n',
        encoding="utf-8",
    )
    memory = Memory(home)
    memory.ingest([ROOT / "examples"], progress=False)
    sources = memory.retrieve(QUESTION, args.k)
    messages = build_messages(QUESTION, sources)
    options = GenerationOptions(max_tokens=args.max_tokens, temperature=0.0, seed=0)
    c = memory.config.llm

    # 1. plain llama-cpp-python: its own Llama object, the same messages.
    from llama_cpp import Llama

    plain = Llama(
        model_path=str(resolve_gguf(model)),
        n_ctx=c.context_tokens,
        n_threads=args.threads or None,
        verbose=False,
    )

    def count(text: str) -> int:
        return len(plain.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def plain_stream() -> Iterator[str]:
        plain.reset()  # no reuse of the previous identical prompt: measure its full evaluation
        for part in plain.create_chat_completion(
            messages=messages, max_tokens=args.max_tokens, temperature=0.0, stream=True
        ):
            text = part["choices"][0]["delta"].get("content")
            if text:
                yield text

    # 2. mem's backend on the same messages.
    backend = LocalBackend(model, c.context_tokens, args.threads)

    # 3. the whole `mem ask` path.
    settings = AskSettings(remember=False, generation=options)

    def ask_measured() -> tuple[float, float]:
        arrivals: list[float] = []
        pieces: list[str] = []

        def on_token(piece: str) -> None:
            arrivals.append(time.perf_counter())
            pieces.append(piece)

        backend.llama.reset()
        started = time.perf_counter()
        memory.ask(QUESTION, args.k, llm=True, settings=settings, on_token=on_token)
        tokens = count("".join(pieces))
        span = arrivals[-1] - arrivals[0]
        rate = (tokens - 1) / span if tokens > 1 and span > 0 else float("nan")
        return arrivals[0] - started, rate

    prompt_tokens = sum(count(m["content"]) for m in messages)
    print(
        f"llm speed: {backend.model}, {len(sources)} sources, ~{prompt_tokens} prompt "
        f"tokens, max {args.max_tokens} new tokens, greedy, {args.runs} runs (median), "
        f"{os.cpu_count()} CPUs, threads={args.threads or 'default'}\n"
        f"  llama.cpp {llama_cpp.__version__} from {Path(llama_cpp.__file__).parent}: "
        f"{llama_cpp.llama_print_system_info().decode().strip()}"
    )
    # Interleaved so that drift (thermal, other load) hits all three alike.
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "backend": [], "ask": []}
    for run in range(args.runs + 1):
        plain_r = measure(plain_stream, count)
        backend.llama.reset()
        backend_r = measure(lambda: backend.stream(messages, options), count)
        ask_r = ask_measured()
        if run:  # the first round warms caches up
            results["plain"].append(plain_r)
            results["backend"].append(backend_r)
            results["ask"].append(ask_r)
    p = report("plain llama-cpp-python", results["plain"])
    b = report("mem LocalBackend", results["backend"])
    a = report("mem ask (end to end)", results["ask"])
    print(f"  backend / plain tokens/s     {b[1] / p[1]:.3f}")
    print(f"  mem ask / plain tokens/s     {a[1] / p[1]:.3f}")
    print(f"  mem ask TTFT - plain TTFT    {(a[0] - p[0]) * 1000:+.1f} ms (retrieval + gate)")
    memory.close()
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Are `mem ask`'s answers right, in the question's language, and cited? (XQuAD ru/en)

    python benchmarks/answer_quality.py [--models qwen2.5-1.5b,qwen2.5-0.5b] [--questions 24]
                                        [--styles short,sentence]

Memory: the 240 XQuAD paragraphs of one language, each its own document (default config, no
sentence vectors, to build it faster). For every n-th of XQuAD's own human-written
questions, the real `mem ask` path runs: retrieval (k sources), the relevance gate, the
prompt, generation at temperature 0, the citation check. Per model, answer style
([llm] answer_style: the default "short"; "short-zero-shot", "short-cited" and "sentence" as
baselines) and language:

* token F1 and gold-in-reply (the answer's words, lowercased, ё→е, citations removed);
* cited: answers with at least one [n], after mem's citation check (and as the model wrote
  them); right: answers whose cited sources include the paragraph the question was written
  for (of the answers where retrieval found it at all), after the check and before it;
* in language: answers written in the question's language (one without letters, such as
  "4721", counts as written in it);
* time to first token and tokens/s (medians), and the process's peak RSS.

Each model runs in its own process, so peak RSS is its own. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import OUT, need_shared, write_paragraphs, xquad

CITATION = re.compile(r"\[\d+(?:\s*[,;–-]\s*\d+)*\]")


def build_home(lang: str) -> Path:
    from mem.memory import Memory

    home = OUT / f"answer-quality-{lang}"
    paragraphs, _ = xquad(lang)
    docs = home / "docs"
    write_paragraphs(docs, paragraphs, f"xquad-{lang}-")
    if not (home / "config.toml").exists():
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            "[retrieval]\nsentence_vectors = false\n", encoding="utf-8"
        )
    with Memory(home) as memory:
        memory.ingest([docs], progress=False)
    return home


def in_language(answer: str, lang: str) -> bool:
    """Written in `lang`; an answer without letters ("4721", "07:40") is in every language."""
    from mem.corpus.language import detect_language

    if not answer.strip():
        return False
    return not any(c.isalpha() for c in answer) or detect_language(answer) == lang


def run_one(model: str, lang: str, style: str, count: int, k: int, max_tokens: int) -> dict:
    """One model, one language, in this process; returns the scores."""
    from mem.adapters.evaluate import normalize, token_f1
    from mem.memory import Memory
    from mem.memory.answering.ask import Answerer, AskSettings
    from mem.memory.answering.llm import GenerationOptions

    home = OUT / f"answer-quality-{lang}"
    _, questions = xquad(lang)
    step = max(1, len(questions) // count)
    picked = questions[::step][:count]
    options = GenerationOptions(max_tokens=max_tokens, temperature=0.0, seed=0)
    settings = AskSettings(
        backend="local", model=model, remember=False, generation=options, answer_style=style
    )
    rows = []
    with Memory(home) as memory:
        answerer = Answerer(memory, settings)
        answerer.backend  # load the model before the clock starts  # noqa: B018
        for q in picked:
            arrivals: list[float] = []
            sources = memory.retrieve(q.question, k)
            started = time.perf_counter()
            answer = answerer.answer(
                q.question,
                sources,
                on_token=lambda _p, seen=arrivals: seen.append(time.perf_counter()),
            )
            text = answer.answer or ""
            gold_file = f"xquad-{lang}-{q.paragraph:03d}.txt"
            gold_numbers = {
                n for n, s in enumerate(answer.sources, start=1) if s.source.endswith(gold_file)
            }
            plain = CITATION.sub(" ", text)
            tokens = len(plain.split())
            span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
            rows.append(
                {
                    "question": q.question,
                    "gold": q.answer,
                    "answer": text,
                    "f1": token_f1(plain, q.answer),
                    "gold_in_reply": normalize(q.answer) in normalize(plain),
                    "cited": bool(answer.cited),
                    "model_cited": bool(getattr(answer, "model_cited", answer.cited)),
                    "model_cited_gold": bool(
                        gold_numbers & set(getattr(answer, "model_cited", answer.cited))
                    ),
                    "gold_retrieved": bool(gold_numbers),
                    "cited_gold": bool(gold_numbers & set(answer.cited)),
                    "in_language": in_language(plain, lang),
                    "ttft": arrivals[0] - started if arrivals else float("nan"),
                    "pieces_per_s": (len(arrivals) - 1) / span if span > 0 else float("nan"),
                    "words": tokens,
                }
            )
    retrieved = [r for r in rows if r["gold_retrieved"]]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": model,
        "style": style,
        "lang": lang,
        "questions": len(rows),
        "f1": statistics.mean(r["f1"] for r in rows),
        "gold_in_reply": statistics.mean(r["gold_in_reply"] for r in rows),
        "cited": statistics.mean(r["cited"] for r in rows),
        "model_cited": statistics.mean(r["model_cited"] for r in rows),
        "correct_citation": (
            statistics.mean(r["cited_gold"] for r in retrieved) if retrieved else float("nan")
        ),
        "model_correct_citation": (
            statistics.mean(r["model_cited_gold"] for r in retrieved) if retrieved else float("nan")
        ),
        "gold_retrieved": len(retrieved) / len(rows),
        "in_language": statistics.mean(r["in_language"] for r in rows),
        "ttft_s": statistics.median(r["ttft"] for r in rows),
        "pieces_per_s": statistics.median(r["pieces_per_s"] for r in rows),
        "words": statistics.mean(r["words"] for r in rows),
        "peak_rss_mb": peak,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="qwen2.5-1.5b")
    parser.add_argument("--langs", default="ru,en")
    parser.add_argument("--styles", default="short,sentence", help="[llm] answer_style values")
    parser.add_argument("--questions", type=int, default=24, help="per language")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: model@lang in this process
    args = parser.parse_args()
    need_shared()
    if args.one:
        model, lang, style = args.one.rsplit("@", 2)
        result = run_one(model, lang, style, args.questions, args.k, args.max_tokens)
        OUT.mkdir(parents=True, exist_ok=True)
        rows = OUT / f"answer_quality-{Path(model).name}-{style}-{lang}.json"
        rows.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        print(json.dumps(result, ensure_ascii=False))
        return

    langs = args.langs.split(",")
    for lang in langs:
        build_home(lang)
    print(
        f"answer quality: XQuAD, {args.questions} questions per language, k={args.k}, "
        f"max {args.max_tokens} tokens, greedy, {os.cpu_count()} CPUs"
    )
    head = (
        f"{'model':16} {'style':8} {'lang':4} {'F1':>5} {'gold':>5} {'cited':>5} {'model':>5} "
        f"{'right':>5} {'model':>5} "
        f"{'lang%':>5} {'TTFT s':>6} {'tok/s':>6} {'words':>5} {'RSS MB':>7}"
    )
    print(head)
    results = []
    runs = [
        (m, style, lang)
        for m in args.models.split(",")
        for style in args.styles.split(",")
        for lang in langs
    ]
    for model, style, lang in runs:
        command = [
            sys.executable,
            __file__,
            "--one",
            f"{model}@{lang}@{style}",
            "--questions",
            str(args.questions),
            "-k",
            str(args.k),
            "--max-tokens",
            str(args.max_tokens),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{model} {style} {lang}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{Path(model).name[:16]:16} {style:8} {lang:4} {r['f1']:5.2f} "
            f"{r['gold_in_reply']:5.2f} {r['cited']:5.2f} {r['model_cited']:5.2f} "
            f"{r['correct_citation']:5.2f} {r['model_correct_citation']:5.2f} "
            f"{r['in_language']:5.2f} "
            f"{r['ttft_s']:6.2f} {r['pieces_per_s']:6.1f} {r['words']:5.1f} "
            f"{r['peak_rss_mb']:7.0f}",
            flush=True,
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "answer_quality.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(
        "(F1/gold over all answers; cited/right: after mem checked the citations, 'model': "
        "as the model wrote them; right = cites the gold paragraph, of the answers where "
        f"retrieval found it; per-answer rows in {OUT})"
    )


if __name__ == "__main__":
    main()

"""Glue between the corpus, the index and distill/: score novelty, select, build, export.

distill/ works on plain records and arrays; this module fetches them (chunks and turns from
the corpus, stored vectors from Chroma) and writes the results back (scores, runs).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mem.corpus import Chunk
from mem.corpus.records import Run, StoredScore, StoredTurn, check_tags
from mem.distill import minhash
from mem.distill.options import DistillOptions
from mem.distill.records import Example, Item, SourceItem
from mem.distill.selection import Selection, rejection, select
from mem.memory.records import Source
from mem.models import models_dir

if TYPE_CHECKING:
    from mem.distill.dataset import BuiltDataset
    from mem.distill.generate import Teacher
    from mem.memory.core import Memory

log = logging.getLogger("mem.distill")

_VECTOR_BATCH = 2000


def _group(chunk: Chunk) -> str:
    conversation = chunk.meta.get("conversation_id")
    return f"conversation:{conversation}" if conversation else chunk.source


def _order(chunk: Chunk, stamps: dict[str, str]) -> tuple:
    return (
        stamps.get(chunk.chunk_id, ""),
        chunk.meta.get("date") or "",
        chunk.source,
        chunk.position,
    )


class _Turns:
    """Turns of a chat chunk, read once per conversation."""

    def __init__(self, memory: Memory) -> None:
        self._corpus = memory.corpus
        self._cache: dict[str, list[StoredTurn]] = {}

    def __call__(self, chunk: Chunk) -> tuple[tuple[str, str], ...]:
        conversation = chunk.meta.get("conversation_id")
        if not conversation:
            return ()
        if conversation not in self._cache:
            self._cache[conversation] = self._corpus.conversation_turns(conversation)
        first, last = chunk.meta.get("turns", [0, 0])
        branch = chunk.meta.get("branch", 0)
        return tuple(
            (t.role, t.text)
            for t in self._cache[conversation]
            if t.branch == branch and first <= t.index + 1 <= last and t.text.strip()
        )


def _vectors(memory: Memory, chunks: Sequence[Chunk]) -> np.ndarray:
    """The stored chunk vectors from Chroma; only chunks the index lacks are embedded."""
    from mem.index.store import embed_text

    found: dict[str, np.ndarray] = {}
    ids = [c.chunk_id for c in chunks]
    for start in range(0, len(ids), _VECTOR_BATCH):
        found.update(memory.index.vectors.vectors(ids[start : start + _VECTOR_BATCH]))
    missing = [c for c in chunks if c.chunk_id not in found]
    if missing:
        log.info("embedding %d chunks the index lacks", len(missing))
        for chunk, vector in zip(
            missing, memory.index.embed([embed_text(c) for c in missing]), strict=True
        ):
            found[chunk.chunk_id] = vector
    return np.stack([found[i] for i in ids]) if ids else np.zeros((0, 1), dtype=np.float32)


def score_novelty(memory: Memory) -> dict:
    """Score every chunk that has no score from the current embedding model yet.

    The caller holds the memory's writer lock (the nightly job and the CLI both do).
    """
    started = time.perf_counter()
    corpus, model = memory.corpus, memory.config.embedding.model
    stored = {s.item_id: s for s in corpus.scores("chunk", model)}
    chunks = list(corpus.iter_chunks())
    targets = [n for n, c in enumerate(chunks) if c.chunk_id not in stored]
    detail: dict = {"model": model, "items": len(chunks), "scored": len(targets)}
    if not targets:
        return {**detail, "seconds": round(time.perf_counter() - started, 2)}
    stamps, turns = corpus.chunk_stamps(), _Turns(memory)
    wanted = set(targets)
    items = [
        Item(
            item_id=c.chunk_id,
            group=_group(c),
            order=_order(c, stamps),
            text=c.text,
            turns=turns(c) if n in wanted else (),
        )
        for n, c in enumerate(chunks)
    ]
    signatures = {
        n: minhash.from_bytes(stored[c.chunk_id].minhash)
        for n, c in enumerate(chunks)
        if c.chunk_id in stored and stored[c.chunk_id].minhash
    }
    fetched = time.perf_counter()
    vectors = _vectors(memory, chunks)
    detail["vectors_seconds"] = round(time.perf_counter() - fetched, 2)
    from mem.distill.novelty import score_items

    run_id = corpus.start_run("novelty", {"model": model})
    try:
        scores = score_items(items, vectors, targets, signatures)
        corpus.save_scores(scores, model, run_id)
    except BaseException as error:
        corpus.finish_run(run_id, "failed", {**detail, "error": str(error)})
        raise
    settings = distill_options(memory)
    detail |= {
        "run_id": run_id,
        "duplicates": sum(1 for s in scores if s.duplicate_of),
        "qualifying": sum(1 for s in scores if rejection(s, settings) is None),
        "seconds": round(time.perf_counter() - started, 2),
    }
    corpus.finish_run(run_id, "ok", detail)
    return detail


def distill_options(memory: Memory, min_novelty: float | None = None) -> DistillOptions:
    """[distill] as configured, with `--min-novelty` in place of its threshold if given."""
    options = memory.config.distill
    return options if min_novelty is None else replace(options, threshold=min_novelty)


def last_build(memory: Memory, tag: str | None = None) -> Run | None:
    """The newest successful dataset build of the core (tag None) or of one tag's material
    (its detail holds `scored_through`): a domain build leaves the core's "new" alone."""
    for run in memory.corpus.runs("dataset", limit=200):
        if run.outcome == "ok" and run.detail.get("tag") == tag:
            return run
    return None


def fresh_and_older(
    memory: Memory, since: str | None = None, tag: str | None = None
) -> tuple[list[StoredScore], list[StoredScore]]:
    """Scored items since the last dataset build (or ingested on/after `since`), and the rest;
    with `tag`, only chunks of documents carrying that tag, new since that tag's last build."""
    rows = memory.corpus.scores("chunk", memory.config.embedding.model)
    if tag is not None:
        tagged = memory.corpus.tagged_chunk_ids(tag)
        rows = [r for r in rows if r.item_id in tagged]
    if since:
        stamps = memory.corpus.chunk_stamps()
        fresh = [r for r in rows if stamps.get(r.item_id, "") >= since]
    else:
        build = last_build(memory, tag)
        through = build.detail.get("scored_through", 0) if build else 0
        fresh = [r for r in rows if (r.run_id or 0) > through]
    ids = {r.item_id for r in fresh}
    return fresh, [r for r in rows if r.item_id not in ids]


def distillable_count(memory: Memory) -> int:
    settings = distill_options(memory)
    fresh, _ = fresh_and_older(memory)
    return sum(1 for r in fresh if rejection(r, settings) is None)


@dataclass
class NoveltyReport:
    scoring: dict
    settings: DistillOptions
    items: list[dict] = field(default_factory=list)  # the top ones, best first
    total: int = 0
    selected: int = 0
    skipped: dict = field(default_factory=dict)
    replay: int = 0

    def to_json(self) -> dict:
        return {
            "scoring": self.scoring,
            "threshold": self.settings.threshold,
            "min_importance": self.settings.min_importance,
            "replay_share": self.settings.replay_share,
            "total": self.total,
            "selected": self.selected,
            "replay": self.replay,
            "skipped": self.skipped,
            "items": self.items,
        }


def novelty_report(
    memory: Memory, since: str | None = None, top: int = 20, min_novelty: float | None = None
) -> NoveltyReport:
    """Score what is new, then show what the next build would take, and why."""
    scoring = score_novelty(memory)
    settings = distill_options(memory, min_novelty)
    fresh, older = fresh_and_older(memory, since)
    selection = select(fresh, older, settings)
    ranked = sorted(fresh, key=lambda s: (-s.value, s.item_id))[:top]
    wanted = [s.item_id for s in ranked] + [s.signals.get("nearest", "") for s in ranked]
    chunks = {c.chunk_id: c for c in memory.corpus.chunks([w for w in wanted if w])}
    report = NoveltyReport(
        scoring=scoring,
        settings=settings,
        total=len(fresh),
        selected=len(selection.fresh),
        skipped=dict(selection.skipped),
        replay=len(selection.replay),
    )
    for s in ranked:
        chunk = chunks.get(s.item_id)
        nearest = chunks.get(s.signals.get("nearest", ""))
        report.items.append(
            {
                "chunk_id": s.item_id,
                "source": chunk.source if chunk else "",
                "title": chunk.title if chunk else "",
                "locator": chunk.locator if chunk else "",
                "novelty": s.novelty,
                "importance": s.importance,
                "value": round(s.value, 4),
                "duplicate_of": s.duplicate_of,
                "selected": rejection(s, settings) is None,
                "reason": rejection(s, settings) or "novel",
                "nearest": {
                    "chunk_id": nearest.chunk_id,
                    "title": nearest.title,
                    "locator": nearest.locator,
                    "similarity": s.signals.get("similarity"),
                }
                if nearest
                else None,
                "signals": {
                    k: v for k, v in s.signals.items() if k not in ("nearest", "similarity")
                },
                "text": chunk.text if chunk else "",
            }
        )
    return report


def source_items(memory: Memory, selection: Selection) -> list[SourceItem]:
    from mem.corpus.language import detect_language

    roles = {s.item_id: "fresh" for s in selection.fresh} | {
        s.item_id: "replay" for s in selection.replay
    }
    turns = _Turns(memory)
    items = []
    for chunk in memory.corpus.chunks(list(roles)):
        items.append(
            SourceItem(
                chunk_id=chunk.chunk_id,
                group=_group(chunk),
                source=chunk.source,
                title=chunk.title,
                locator=chunk.locator,
                text=chunk.text,
                language=detect_language(chunk.text),
                role=roles[chunk.chunk_id],  # type: ignore[arg-type]
                headings=tuple(chunk.meta.get("headings") or ()),
                turns=turns(chunk),
                date=chunk.meta.get("date") or "",
            )
        )
    return items


class NothingToDistill(ValueError):
    """No item qualifies: an empty dataset would only confuse the training stage."""


class NoTaggedMaterial(NothingToDistill):
    """A domain dataset was asked for, but no document carries its tag."""


def check_tagged(memory: Memory, tag: str) -> None:
    """ValueError for a bad tag name, NoTaggedMaterial when no document carries it."""
    check_tags([tag])
    if memory.corpus.tagged_chunk_ids(tag):
        return
    known = memory.corpus.tags()
    in_use = f"tags in memory: {', '.join(known)}" if known else "no document has a tag yet"
    raise NoTaggedMaterial(
        f"no material in memory is tagged {tag!r} ({in_use}); "
        f"add it with `mem ingest PATH --tag {tag}`"
    )


class BackendTeacher:
    """An [llm] backend (mem.memory.answering.llm) as the distill teacher: its `chat` is
    `generate`."""

    def __init__(self, backend: object) -> None:
        self._backend = backend

    def generate(self, messages: list[dict]) -> str:
        return self._backend.chat(messages)  # type: ignore[attr-defined]


def llm_teacher(memory: Memory) -> Teacher:
    """The hook where `[distill] teacher = "llm"` plugs in the configured [llm] backend."""
    from mem.memory.answering.llm import LLMError, load_backend

    try:
        return BackendTeacher(load_backend(memory.config, home=memory.home))
    except LLMError as error:
        raise ValueError(f'[distill] teacher = "llm": {error}') from error


def build(
    memory: Memory,
    since: str | None = None,
    min_novelty: float | None = None,
    progress: bool = False,
    tag: str | None = None,
) -> BuiltDataset:
    """Score, select and build a dataset under <home>/datasets/; logged as a "dataset" run.

    With `tag`, only material of documents tagged so (a domain adapter's dataset); raises
    NoTaggedMaterial when there is none. The caller holds the memory's writer lock.
    """
    from mem.distill.dataset import build_dataset
    from mem.distill.generate import make_generator
    from mem.distill.hygiene import load_token_counter
    from mem.memory.distilling.training import core_base_model

    if tag is not None:
        check_tagged(memory, tag)
    d = memory.config.distill
    scoring = score_novelty(memory)
    tagged = {"tag": tag} if tag else {}  # run details of a domain build say which
    run_id = memory.corpus.start_run("dataset", tagged)
    try:
        settings = distill_options(memory, min_novelty)
        fresh_rows, older_rows = fresh_and_older(memory, since, tag)
        selection = select(fresh_rows, older_rows, settings)
        if not selection.items:
            of_tag = f" tagged {tag!r}" if tag else ""
            raise NothingToDistill(
                f"nothing to distill: {len(fresh_rows)} new items{of_tag}, none above the "
                f"thresholds ({dict(selection.skipped) or 'no new items'}); --since or "
                "--min-novelty choose more"
            )
        items = source_items(memory, selection)
        generator = make_generator(
            d.teacher,
            lambda: llm_teacher(memory),
            budget_s=d.teacher_budget_min * 60,
            other_language_qa=d.other_language_qa,
            qa_pairs=d.qa_pairs,
        )
        base = core_base_model(memory.config) if d.base_model else ""  # "": lengths estimated
        counter = load_token_counter(base, models_dir() / "tokenizers")
        scored_through = max((r.run_id or 0 for r in fresh_rows + older_rows), default=0)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), desc="examples", unit="chunk", leave=False)
        built = build_dataset(
            items,
            generator,
            counter,
            d,
            memory.home / "datasets",
            extra_manifest={
                "base_model": base,
                "scoring_model": memory.config.embedding.model,
                "scored_through": scored_through,
                "since": since,
                "tag": tag,
                "selection": {
                    "threshold": settings.threshold,
                    "min_importance": settings.min_importance,
                    "replay_share": settings.replay_share,
                    "fresh_scored": len(fresh_rows),
                    "skipped": dict(selection.skipped),
                },
                "scoring": scoring,
            },
            progress=bar.update if bar else None,
            reader=(
                reader_examples(
                    memory,
                    d.reader_sources,
                    d.reader_negative_share,
                    d.reader_window_words,
                    within=memory.corpus.tagged_chunk_ids(tag) if tag else None,
                )
                if d.reader_examples
                else None
            ),
        )
        if bar:
            bar.close()
        if d.teacher == "llm":
            from mem.memory.answering.llm import release_llamas

            del generator  # the teacher's model: not resident while the adapter trains
            release_llamas()
    except NothingToDistill as nothing:
        memory.corpus.finish_run(run_id, "skipped", {**tagged, "reason": str(nothing)})
        raise
    except BaseException as error:
        memory.corpus.finish_run(
            run_id, "failed", {**tagged, "error": f"{type(error).__name__}: {error}"}
        )
        raise
    memory.corpus.finish_run(
        run_id,
        "ok",
        {
            "dataset_id": built.dataset_id,
            "scored_through": scored_through,
            **tagged,
            **built.manifest["counts"],
        },
    )
    return built


def export(
    memory: Memory,
    fmt: str,
    out: Path,
    since: str | None = None,
    min_novelty: float | None = None,
    progress: bool = False,
    tag: str | None = None,
) -> dict:
    from mem.distill.export import export_dataset

    built = build(memory, since, min_novelty, progress, tag)
    result = export_dataset(built.path, fmt, out)
    return {
        **result,
        "dataset_id": built.dataset_id,
        "dataset_path": str(built.path),
        "counts": built.manifest["counts"] | {"exported": result["counts"]},
    }


# -- reader examples -----------------------------------------------------------------------------


def _as_source(chunk: Chunk, rank: int) -> Source:
    return Source(rank, chunk.chunk_id, chunk.source, chunk.title, chunk.locator, 0.0, chunk.text)


def _share(key: str) -> float:
    """A stable number in [0, 1) for a text: the same choice on every build."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def window(text: str, focus: dict[str, int], words: int) -> str:
    """The `words` consecutive words of `text` that hold the most weight of `focus` (stem →
    weight), "…" where it was cut; the whole text when it is that short or words <= 0."""
    from mem.index.lexical import analyze

    split = text.split()
    if words <= 0 or len(split) <= words:
        return " ".join(split)
    weights = [max((focus.get(stem, 0) for stem in analyze(w)), default=0) for w in split]
    totals = [sum(weights[:words])]
    for start in range(1, len(split) - words + 1):
        totals.append(totals[-1] + weights[start + words - 1] - weights[start - 1])
    # Of the best windows in a row, the middle one: the fact with context on both sides.
    first = totals.index(max(totals))
    last = first
    while last + 1 < len(totals) and totals[last + 1] == totals[first]:
        last += 1
    best_at = (first + last) // 2 if totals[first] else 0
    cut = " ".join(split[best_at : best_at + words])
    return ("… " if best_at else "") + cut + (" …" if best_at + words < len(split) else "")


def reader_examples(
    memory: Memory,
    sources: int,
    negative_share: float,
    window_words: int = 0,
    within: set[str] | None = None,
):
    """Reader examples from a question/answer example (RAFT: the answering passage among
    distractors that the memory's own retrieval returns, and the answer in the form the
    prompt asks for: ending with its [n] only where the answer style asks the model to cite).

    The gold chunk keeps the rank retrieval gave it; when retrieval missed it, it takes a
    rank the question's hash picks, so the adapter learns to look, not to always take [1].
    With window_words > 0 each source is cut to that many words: the gold one around the
    answer's and the question's words, a distractor around the question's (the part that
    looks most like an answer), so the cut itself does not tell which one answers.
    `within`: the chunk ids sources may come from (a domain's dataset holds its material only).
    """
    from mem.index.lexical import analyze
    from mem.memory.answering.prompting import asks_for_citations, build_messages, not_in_memory

    style = memory.config.llm.answer_style

    def cut(given: list[Source], question: str, answer: str, gold_id: str) -> list[Source]:
        if window_words <= 0:
            return given
        asked = dict.fromkeys(analyze(question), 1)
        answering = asked | dict.fromkeys(analyze(answer), 2)
        return [
            replace(
                s, text=window(s.text, answering if s.chunk_id == gold_id else asked, window_words)
            )
            for s in given
        ]

    def make(example: Example) -> list[Example]:
        question, answer = example.prompt, example.answer
        # A domain build looks deeper, since most of what is found may lie outside it.
        found = memory.retrieve(question, (sources + 1) * (4 if within is not None else 1))
        found = [s for s in found if within is None or s.chunk_id in within][: sources + 1]
        distractors = [s for s in found if s.chunk_id != example.source][:sources]
        gold = next((s for s in found[:sources] if s.chunk_id == example.source), None)
        if gold is None:
            chunks = memory.corpus.chunks([example.source])
            if not chunks:
                return []
            at = int(_share(question) * sources)
            given = [*distractors[:at], _as_source(chunks[0], 0), *distractors[at : sources - 1]]
        else:
            given = found[:sources]
        number = next(n for n, s in enumerate(given, start=1) if s.chunk_id == example.source)
        given = cut(given, question, answer, example.source)
        # The reply in the form the prompt asks for: with "[n]" only where it asks the model
        # to cite (under "short" mem cites by attribution, and the worked example has none).
        reply = f"{answer} [{number}]" if asks_for_citations(style) else answer
        out = [_reader(example, build_messages(question, given, style=style), reply)]
        # Negatives: only distractors; skipped when one of them holds the answer too.
        head = " ".join(answer.split()[:8])
        if (
            distractors
            and _share("negative:" + question) < negative_share
            and not any(head in " ".join(s.text.split()) for s in distractors)
        ):
            messages = build_messages(question, cut(distractors, question, "", ""), style=style)
            out.append(_reader(example, messages, not_in_memory(question)))
        return out

    return make


def _reader(example: Example, messages: list[dict], answer: str) -> Example:
    from mem.adapters.data import TRAINING

    # The prompt has no earlier turns here, so a reply in it is the worked example of
    # answer_style "short": the same in every example, shown to the model, never learned.
    shown = [{**m, TRAINING: False} if m["role"] == "assistant" else m for m in messages]
    return Example(
        messages=[*shown, {"role": "assistant", "content": answer}],
        source=example.source,
        kind="reader",
        group=example.group,
    )

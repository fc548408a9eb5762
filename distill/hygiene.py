"""Dataset hygiene: redaction, length limits in the base model's tokens, de-duplication,
a train/validation split by source, and a held-out question set.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mem.distill import minhash
from mem.distill.records import Example

log = logging.getLogger("mem.distill")

# -- redaction --------------------------------------------------------------------------------

_REDACTIONS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[private key]",
    ),
    (
        "key",
        re.compile(
            r"\b(?:sk-(?:proj-)?[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|"
            r"xox[abposr]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|hf_[A-Za-z0-9]{30,})"
        ),
        "[key]",
    ),
    (
        "key",
        re.compile(
            # A literal value only: `password = os.environ[...]` is code, not a secret.
            r"(?i)\b((?:api[_-]?key|secret|token|password|passwd|пароль)\s*[:=]\s*)"
            r"([\"']?)[A-Za-z0-9_\-+/=!@#$%^&*]{8,}\2(?![\w.(\[])"
        ),
        r"\1[key]",
    ),
    ("email", re.compile(r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}\b"), "[email]"),
    # Digit groups with spaces, dashes or brackets, optionally "+country"; _is_phone then
    # wants 10-13 digits and rules out dates, ISBNs and zeros.
    (
        "phone",
        re.compile(
            r"(?<![\w+.\-/])(?:\+\d{1,3}[\s\-]?)?(?:\(\d{1,4}\)[\s\-]?)?\d{1,4}"
            r"(?:[\s\-]\d{2,8}){1,4}(?![\w\-/]|\.\d)"
        ),
        "[phone]",
    ),
]


def _is_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 10 <= len(digits) <= 13 or not digits.strip("0"):
        return False
    if len(digits) == 13 and digits.startswith(("978", "979")):  # an ISBN
        return False
    return not re.match(r"(19|20)\d\d-\d", candidate)  # a date or a year-number id


def redact(text: str, counts: Counter | None = None) -> str:
    """E-mail addresses, phone numbers and secrets replaced by a bracketed placeholder."""
    for name, pattern, replacement in _REDACTIONS:
        n = 0

        def substitute(match: re.Match, name: str = name, replacement: str = replacement) -> str:
            nonlocal n
            if name == "phone" and not _is_phone(match.group(0)):
                return match.group(0)
            n += 1
            return match.expand(replacement)

        text = pattern.sub(substitute, text)
        if counts is not None and n:
            counts[name] += n
    return text


def redact_examples(examples: Sequence[Example]) -> Counter:
    counts: Counter = Counter()
    for example in examples:
        for message in example.messages:
            message["content"] = redact(message["content"], counts)
    return counts


# -- tokens of the base model -----------------------------------------------------------------

# Base models we know by a short name: (package shipping the GGUF, file inside it).
_MESSAGE_OVERHEAD = 4  # role markers a chat template adds per message (SmolLM2: 3-5)


@dataclass
class TokenCounter:
    """Counts tokens the way the base model will see them (or estimates, and says so)."""

    name: str
    tokenizer: object | None = None

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            # No tokenizer at hand: BPE vocabularies split Russian into more pieces than
            # English; 1.5 per word is the estimate this fallback states in the manifest.
            return int(len(text.split()) * 1.5) + 1
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_messages(self, messages: Sequence[dict]) -> int:
        return sum(self.count(m["content"]) + _MESSAGE_OVERHEAD for m in messages)

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None


def _tokenizer_source(base_model: str) -> tuple[str, str | None] | None:
    """(folder, gguf file or None) to load the base model's tokenizer from, if local."""
    from mem.models import PACKAGED_GGUF, PackagedModelError, packaged_gguf

    if base_model in PACKAGED_GGUF:
        try:
            found = packaged_gguf(base_model)
        except PackagedModelError:
            return None
        return (str(found.parent), found.name) if found else None
    path = Path(base_model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if path.is_dir():
        return str(path), None
    return None


def load_token_counter(base_model: str, cache_dir: Path) -> TokenCounter:
    """The base model's tokenizer, cached as tokenizer.json under cache_dir after first use.

    Reading it out of a GGUF takes about 20 s; the saved copy loads in half a second.
    """
    if not base_model:
        return TokenCounter("estimate: words x 1.5 (no base model set)")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", base_model).strip("-")[-60:] or "base"
    cached = cache_dir / slug
    try:
        from transformers import AutoTokenizer

        if (cached / "tokenizer.json").exists():
            return TokenCounter(f"{base_model} tokenizer", AutoTokenizer.from_pretrained(cached))
        source = _tokenizer_source(base_model)
        if source is None:
            raise FileNotFoundError(f"no local tokenizer for {base_model!r}")
        folder, gguf_file = source
        if gguf_file:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        else:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        cached.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(cached)
        return TokenCounter(f"{base_model} tokenizer", tokenizer)
    except Exception as error:  # no tokenizer is not fatal: estimate, and say so
        log.warning("no tokenizer for %s (%s): estimating 1.5 tokens per word", base_model, error)
        return TokenCounter(f"estimate: words x 1.5 (no tokenizer for {base_model}: {error})")


def _sentence_prefix(text: str, counter: TokenCounter, budget: int) -> str:
    from mem.distill.generate import sentences

    kept: list[str] = []
    for sentence in sentences(text):
        if counter.count(" ".join([*kept, sentence])) > budget:
            break
        kept.append(sentence)
    return " ".join(kept)


def limit_length(
    examples: Sequence[Example], counter: TokenCounter, max_tokens: int
) -> tuple[list[Example], Counter]:
    """Keep examples within max_tokens: a long answer is cut at a sentence boundary, and an
    example whose prompt alone does not fit (or whose answer has no whole sentence left)
    is dropped."""
    kept: list[Example] = []
    counts: Counter = Counter()
    for example in examples:
        total = counter.count_messages(example.messages)
        if total <= max_tokens:
            kept.append(example)
            continue
        last = example.messages[-1]
        budget = max_tokens - counter.count_messages(example.messages[:-1]) - _MESSAGE_OVERHEAD
        cut = _sentence_prefix(last["content"], counter, budget) if budget > 0 else ""
        if last["role"] != "assistant" or not cut:
            counts["too_long"] += 1
            continue
        last["content"] = cut
        counts["truncated"] += 1
        kept.append(example)
    return kept, counts


# -- duplicates -------------------------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def deduplicate(
    examples: Sequence[Example], near_jaccard: float = 0.9
) -> tuple[list[Example], Counter]:
    """Drop exact repeats, and near-repeats that come from a different source.

    Near-duplicates within one source are the restatements we want (same answer, other
    question), so only copies across sources (a paste seen twice) are removed.
    """
    counts: Counter = Counter()
    seen: set[str] = set()
    unique: list[Example] = []
    for example in examples:
        key = hashlib.sha256(
            "\x1f".join(_normal(m["content"]) for m in example.messages).encode()
        ).hexdigest()
        if key in seen:
            counts["exact_duplicates"] += 1
            continue
        seen.add(key)
        unique.append(example)
    signatures = [minhash.signature(f"{e.prompt}\n{e.answer}") for e in unique]
    dropped: set[int] = set()
    for a, b in sorted(minhash.candidate_pairs(signatures)):
        if a in dropped or b in dropped or unique[a].source == unique[b].source:
            continue
        if unique[a].kind != unique[b].kind:
            continue
        if minhash.similarity(signatures[a], signatures[b]) >= near_jaccard:
            dropped.add(b)
    counts["near_duplicates"] = len(dropped)
    return [e for i, e in enumerate(unique) if i not in dropped], counts


# -- split ------------------------------------------------------------------------------------


def _rank(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\x00{group}".encode()).hexdigest()


def validation_groups(groups: Sequence[str], share: float, seed: int = 0) -> set[str]:
    """A share of whole sources (documents, conversations), chosen by a stable hash."""
    unique = sorted(set(groups))
    if share <= 0 or len(unique) < 2:
        return set()
    n = max(1, round(len(unique) * share))
    n = min(n, len(unique) - 1)  # training always keeps at least one source
    return set(sorted(unique, key=lambda g: _rank(g, seed))[:n])


# A held-out question is a real question: an extracted Q&A, else a user's own chat question.
_HELDOUT_KINDS = ("qa", "chat")
HELDOUT_PER_CHUNK = 3
MIN_HELDOUT_CHUNKS = 2


@dataclass
class Split:
    train: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    heldout: list[dict] = field(default_factory=list)


def split_by_source(
    examples: Sequence[Example], validation_share: float, heldout_share: float, seed: int = 0
) -> Split:
    """Train/validation by source, so no source feeds both; plus held-out questions.

    The held-out set tests whether a trained adapter learned the facts: for a share of the
    training chunks (at least two), up to three question/answer restatements are kept out of
    training while the other restatements of the same chunk stay in, so the facts are
    learnable but the exact questions are unseen.
    """
    val_groups = validation_groups([e.group for e in examples], validation_share, seed)
    split = Split()
    for example in examples:
        (split.validation if example.group in val_groups else split.train).append(example)
    by_chunk: dict[str, list[int]] = {}
    for n, example in enumerate(split.train):
        by_chunk.setdefault(example.source, []).append(n)

    # Only chunks with another restatement left in training can lend questions; each one
    # lends up to HELDOUT_PER_CHUNK distinct questions and keeps at least one other row.
    def question_rows(rows: list[int]) -> list[int]:
        asked: dict[str, int] = {}
        for kind in _HELDOUT_KINDS:
            for r in rows:
                if split.train[r].kind == kind:
                    asked.setdefault(split.train[r].prompt, r)
        chosen: list[int] = []
        for prompt, r in asked.items():
            taken = {split.train[c].prompt for c in chosen} | {prompt}
            left = [x for x in rows if split.train[x].prompt not in taken]
            if len(chosen) == HELDOUT_PER_CHUNK or not left:
                break
            chosen.append(r)
        return chosen

    candidates = sorted(
        (c for c, rows in by_chunk.items() if question_rows(rows)),
        key=lambda c: _rank(c, seed),
    )
    # At least MIN_HELDOUT_CHUNKS when chunks can lend questions: a small memory (nine
    # paragraphs) rounded to none or one, and the gate then compared one answer, or none.
    wanted = round(len(by_chunk) * heldout_share)
    chosen = candidates[: max(wanted, MIN_HELDOUT_CHUNKS if heldout_share > 0 else 0)]
    for chunk in chosen:
        for row in question_rows(by_chunk[chunk]):
            example = split.train[row]
            split.heldout.append(
                {
                    "question": example.prompt,
                    "answer": example.answer,
                    "source": chunk,
                    "kind": example.kind,
                }
            )
    # The same question asked of another chunk leaves training too: it must be unseen.
    asked = {h["question"] for h in split.heldout}
    removed = {n for n, e in enumerate(split.train) if e.prompt in asked}
    split.train = [e for n, e in enumerate(split.train) if n not in removed]
    return split

"""Evaluate base and adapters on a dataset: validation loss/perplexity, answers to the
held-out questions (exact match, token F1, recall of the answer's words) and a general
control set that shows forgetting.

Arms: "base" and each adapter closed-book, and, when the caller passes `rag` (a function
from a question to the messages `mem ask` would send: system prompt, retrieved sources,
question), "base+rag" and "<adapter>+rag" for the adapters named in `rag_arms`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mem.adapters.data import IGNORE, Example, HeldoutQuestion, encode, prompt_ids
from mem.corpus.language import detect_language
from mem.models.hardware import requires_grad_kept, unfrozen_cpu_weights

ANSWER_METRICS = ("token_f1", "exact_match", "recall")
METRICS = (*ANSWER_METRICS, "val_loss")
Rag = Callable[[str], Sequence[dict]]
LOWER_IS_BETTER = {"val_loss", "perplexity"}


@dataclass(frozen=True)
class EvalOptions:
    max_seq_len: int = 512
    batch_size: int = 8
    max_new_tokens: int = 48
    max_questions: int = 100  # held-out questions evaluated (first N, in file order)
    max_validation: int = 200  # validation examples for the loss
    samples: int = 5  # answers kept beside the scores (the run report shows them)


# -- answer scoring (Russian-aware) --------------------------------------------------------


# "[2]", "[1, 3]": a citation says where the answer is, it is not part of the answer.
_CITATION = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")


def normalize(text: str) -> str:
    """Citations dropped, lowercase, ё→е, punctuation and symbols to spaces, whitespace
    collapsed."""
    text = _CITATION.sub(" ", unicodedata.normalize("NFKC", text)).lower().replace("ё", "е")
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = tokens(prediction), tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def recall(prediction: str, gold: str) -> float:
    """Share of the gold answer's words the prediction contains (key-information recall)."""
    ref = set(tokens(gold))
    return len(ref & set(tokens(prediction))) / len(ref) if ref else 1.0


# Numbers a short answer may spell out: the forms a reply takes ("четыре", "четырьмя").
_UNITS = {
    0: "ноль нуль нуля zero",
    1: "один одна одно одного одной one",
    2: "два две двух двумя two",
    3: "три трех тремя three",
    4: "четыре четырех четырьмя four",
    5: "пять пяти пятью five",
    6: "шесть шести шестью six",
    7: "семь семи семью seven",
    8: "восемь восьми восемью eight",
    9: "девять девяти девятью nine",
    10: "десять десяти десятью ten",
    11: "одиннадцать одиннадцати eleven",
    12: "двенадцать двенадцати twelve",
    13: "тринадцать тринадцати thirteen",
    14: "четырнадцать четырнадцати fourteen",
    15: "пятнадцать пятнадцати fifteen",
    16: "шестнадцать шестнадцати sixteen",
    17: "семнадцать семнадцати seventeen",
    18: "восемнадцать восемнадцати eighteen",
    19: "девятнадцать девятнадцати nineteen",
}
_TENS = {
    20: "двадцать двадцати twenty",
    30: "тридцать тридцати thirty",
    40: "сорок сорока forty",
    50: "пятьдесят пятидесяти fifty",
    60: "шестьдесят шестидесяти sixty",
    70: "семьдесят семидесяти seventy",
    80: "восемьдесят восьмидесяти eighty",
    90: "девяносто девяноста ninety",
    100: "сто ста hundred",
}
_NUMBER = {w: n for table in (_UNITS, _TENS) for n, forms in table.items() for w in forms.split()}


def digits(words: Sequence[str]) -> list[str]:
    """Words with spelled-out numbers as digits: "двадцать четыре" -> "24", "four" -> "4"."""
    out: list[str] = []
    tens = False  # the last word was "двадцать", "forty", ...: units may follow
    for word in words:
        n = _NUMBER.get(word)
        if n is not None and 0 < n < 10 and tens:
            out[-1] = str(int(out[-1]) + n)  # "twenty four"
        else:
            out.append(str(n) if n is not None else word)
        tens = n is not None and 20 <= n < 100
    return out


_ARTICLES = {"a", "an", "the"}


def word_recall(prediction: str, gold: str) -> float:
    """Share of the gold answer's words the prediction says, in any ending ("голубое" for
    "голубого") and numbers in words or digits ("четыре" for "4"): for the control set,
    where a small model's free phrasing must not pass for forgetting. English articles are
    not part of an answer ("Heart" says "the heart")."""
    from mem.corpus.text import said_in

    ref = set(digits(tokens(gold))) - _ARTICLES
    said = set(digits(tokens(prediction)))
    return sum(said_in(word, said) for word in ref) / len(ref) if ref else 1.0


# -- model passes ----------------------------------------------------------------------------


def validation_loss(model, tokenizer, examples: Sequence[Example], options: EvalOptions) -> float:
    """Mean cross-entropy per assistant token (the same mask training uses)."""
    import torch

    from mem.adapters.loss import answer_loss_sum
    from mem.adapters.train import collate

    data = [encode(tokenizer, e, options.max_seq_len) for e in examples[: options.max_validation]]
    data = [d for d in data if any(t != IGNORE for t in d.labels[1:])]
    if not data:
        return math.nan
    device = next(model.parameters()).device
    total, count = 0.0, 0
    model.eval()
    with unfrozen_cpu_weights(model), torch.no_grad():
        for i in range(0, len(data), options.batch_size):
            batch = {
                k: v.to(device)
                for k, v in collate(
                    data[i : i + options.batch_size], tokenizer.pad_token_id
                ).items()
            }
            summed, n = answer_loss_sum(model, batch)
            total += float(summed)
            count += n
    return total / max(1, count)


def generate_answers(
    model,
    tokenizer,
    questions: Sequence[str],
    options: EvalOptions,
    rag: Rag | None = None,
    finished_only: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy answers in the chat template, batched with left padding. finished_only: an
    answer that ran into max_new_tokens before its end-of-turn token comes back as "".
    on_batch(n) is called after each batch with its size (a progress bar's update)."""
    import torch

    device = next(model.parameters()).device
    prompts = [prompt_ids(tokenizer, rag(q) if rag else q) for q in questions]
    answers: list[str] = []
    model.eval()
    with unfrozen_cpu_weights(model), torch.no_grad():
        for i in range(0, len(prompts), options.batch_size):
            chunk = prompts[i : i + options.batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, p in enumerate(chunk):
                ids[row, width - len(p) :] = torch.tensor(p)
                mask[row, width - len(p) :] = 1
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=options.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            for row in out[:, width:]:
                ended = bool((row == tokenizer.eos_token_id).any())
                text = tokenizer.decode(row, skip_special_tokens=True).strip()
                answers.append("" if finished_only and not ended else text)
            if on_batch is not None:
                on_batch(len(chunk))
    return answers


def _mean_score(
    score: Callable[[str, str], float],
    answers: Sequence[str],
    questions: Sequence[HeldoutQuestion],
) -> float:
    pairs = list(zip(answers, questions, strict=True))
    return round(sum(score(a, q.answer) for a, q in pairs) / max(1, len(pairs)), 4)


def _recall_by_language(answers: Sequence[str], questions: Sequence[HeldoutQuestion]) -> dict:
    """{"en": word recall of the English questions, "ru": of the Russian ones, ...}."""
    by_language: dict[str, tuple[list[str], list[HeldoutQuestion]]] = {}
    for answer, question in zip(answers, questions, strict=True):
        said, asked = by_language.setdefault(detect_language(question.question), ([], []))
        said.append(answer)
        asked.append(question)
    return {lang: _mean_score(word_recall, *pair) for lang, pair in sorted(by_language.items())}


def _answer_scores(answers: Sequence[str], questions: Sequence[HeldoutQuestion]) -> dict:
    return {
        "exact_match": _mean_score(exact_match, answers, questions),
        "token_f1": _mean_score(token_f1, answers, questions),
        "recall": _mean_score(recall, answers, questions),
    }


def evaluate_arm(
    model,
    tokenizer,
    validation: Sequence[Example],
    heldout: Sequence[HeldoutQuestion],
    options: EvalOptions,
    rag: Rag | None = None,
    control: Sequence[HeldoutQuestion] = (),
) -> dict:
    """The metrics of one arm (whatever adapter is active on `model`).

    control: general questions answered closed-book (control_f1, control_recall) and scored
    teacher-forced on their answers (control_loss), so forgetting shows even when a small
    model's free answers are poor.
    """
    from mem.adapters.control import as_examples

    result: dict = {}
    loss = validation_loss(model, tokenizer, validation, options) if validation else math.nan
    result["val_loss"] = None if math.isnan(loss) else round(loss, 4)
    result["perplexity"] = None if math.isnan(loss) else round(math.exp(min(loss, 50.0)), 3)
    questions = list(heldout[: options.max_questions])
    if questions:
        answers = generate_answers(model, tokenizer, [q.question for q in questions], options, rag)
        result |= _answer_scores(answers, questions)
        result["questions"] = len(questions)
        result["samples"] = [
            {"question": q.question, "gold": q.answer, "answer": a}
            for q, a in list(zip(questions, answers, strict=True))[: options.samples]
        ]
    if control:
        answers = generate_answers(model, tokenizer, [q.question for q in control], options)
        result["control_f1"] = _mean_score(token_f1, answers, control)
        # Forgetting is judged on what the answer says, however it is phrased, and per
        # language too: an average let an English gain hide a Russian loss (README).
        result["control_recall"] = _mean_score(word_recall, answers, control)
        result["control_recall_by_language"] = _recall_by_language(answers, control)
        result["control_loss"] = round(
            validation_loss(model, tokenizer, as_examples(list(control)), options), 4
        )
    return result


def evaluate_adapters(
    base_model,
    tokenizer,
    adapters: dict[str, str],
    validation: Sequence[Example],
    heldout: Sequence[HeldoutQuestion],
    options: EvalOptions,
    rag: Rag | None = None,
    rag_arms: Sequence[str] = ("adapter",),
    control: Sequence[HeldoutQuestion] = (),
) -> dict[str, dict]:
    """{"base": metrics, name: metrics for each adapter folder} on one loaded base model,
    plus "base+rag" and "<name>+rag" (names in rag_arms) when `rag` is given.

    The adapters are loaded side by side onto the base and removed again at the end, so the
    base model comes back unchanged. A RAG arm has answer metrics only: its losses would be
    those of the closed-book arm.
    """
    results = {
        "base": evaluate_arm(base_model, tokenizer, validation, heldout, options, None, control)
    }
    if rag is not None:
        results["base+rag"] = evaluate_arm(base_model, tokenizer, (), heldout, options, rag)
    if not adapters:
        return results
    from peft import PeftModel

    names = list(adapters)
    with requires_grad_kept(base_model):
        model = PeftModel.from_pretrained(base_model, adapters[names[0]], adapter_name=names[0])
        try:
            for name in names[1:]:
                model.load_adapter(adapters[name], adapter_name=name)
            for name in names:
                model.set_adapter(name)
                results[name] = evaluate_arm(
                    model, tokenizer, validation, heldout, options, None, control
                )
                if rag is not None and name in rag_arms:
                    results[f"{name}+rag"] = evaluate_arm(
                        model, tokenizer, (), heldout, options, rag
                    )
        finally:
            model.unload()
    return results


# -- the promotion rule --------------------------------------------------------------------


def better(
    candidate: dict, reference: dict, metric: str, min_gain: float = 0.0
) -> tuple[bool, str]:
    """Is the candidate better than the reference on `metric` (by more than min_gain)?

    A tie on an answer metric (common on small held-out sets, e.g. both 0) is broken by the
    validation loss, so an adapter that learned nothing measurable is not promoted.
    """
    got, ref = candidate.get(metric), reference.get(metric)
    if got is None or ref is None:
        if metric != "val_loss":
            return better(candidate, reference, "val_loss", min_gain)
        return False, "no metric to compare (empty validation set)"
    lower = metric in LOWER_IS_BETTER
    gain = (ref - got) if lower else (got - ref)
    if gain > min_gain:
        return True, f"{metric} {got} vs {ref}"
    if gain == 0 and metric != "val_loss":
        won, why = better(candidate, reference, "val_loss", min_gain)
        return won, f"{metric} tied at {got}; {why}"
    return False, f"{metric} {got} vs {ref} (needs a gain > {min_gain})"


def forgets(candidate: dict, base: dict, max_drop: float) -> str | None:
    """Why the candidate lost too much general ability against the base model, or None.

    Measured on control_recall (does the answer still contain the right words: small models
    answer in whole sentences, which token F1 punishes) and against the base, not the
    current adapter, so small losses cannot add up over many promotions. max_drop <= 0
    turns the check off.
    """
    got, ref = candidate.get("control_recall"), base.get("control_recall")
    if max_drop <= 0 or got is None or ref is None:
        return None
    if ref - got > max_drop:
        return (
            f"forgets general knowledge: control_recall {got} vs base {ref} (max drop {max_drop})"
        )
    # Each language on its own: the mean of a Russian loss and an English gain can pass.
    got_by, ref_by = (x.get("control_recall_by_language") or {} for x in (candidate, base))
    for lang in sorted(got_by.keys() & ref_by.keys()):
        if ref_by[lang] - got_by[lang] > max_drop:
            return (
                f"forgets general knowledge in {lang}: control_recall {got_by[lang]} vs base "
                f"{ref_by[lang]} (max drop {max_drop})"
            )
    return None

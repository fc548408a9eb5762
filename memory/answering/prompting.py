"""Prompts for answers from memory, and the citation check that runs after generation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mem.corpus.language import detect_language
from mem.memory.records import Source

# A long chunk is cut so that k sources and the reply fit a small model's context.
MAX_SOURCE_CHARS = 1500

# How to answer is said after the question, where a small model (0.5-1.5B) attends most.
# With the citation form ("[1], [2]") in the system prompt Qwen2.5-0.5B answered Russian
# questions with a bare "[1]", and a sample sentence there was copied into answers
# (benchmarks/answer_quality.py; figures in issue 15's note).
_SYSTEM = {
    "en": (
        "You are the user's memory. Answer only from the sources from the user's notes, "
        "documents, lectures and chats. If the sources do not hold the answer, say that "
        "memory holds nothing about it."
    ),
    "ru": (
        "Ты — память пользователя. Отвечай только по источникам из его заметок, документов, "
        "лекций и переписки. Если ответа в источниках нет, скажи, что в памяти об этом "
        "ничего нет."
    ),
}
# "short" (default): the answer itself (a name, a number, a phrase), in the answer's words;
# the model is not asked to cite: mem cites for it, the source that holds the answer's words
# (verify_citations). Asked to end with "[n]", Qwen2.5-0.5B answered Russian questions with a
# source number instead of the answer ("3" for "136"). benchmarks/answer_quality.py, 24 XQuAD
# questions, k=3, token F1 asked to cite -> not asked: 0.5B ru 0.29 -> 0.33, en 0.31 -> 0.30
# (0.5B en: gold answer in the reply 0.42 -> 0.67); 1.5B ru 0.27 -> 0.42, en 0.44 -> 0.64,
# with 88 % (ru) / 100 % (en) of answers cited by attribution. "short-cited" keeps the
# request, as a baseline; "sentence": one full sentence ending in [n] (F1 ru 0.25, en 0.20).
_INSTRUCTIONS = {
    "short": {
        "en": "Answer the question in English, as briefly as possible, with the answer's words.",
        "ru": "Ответь на вопрос по-русски, как можно короче, словами ответа.",
    },
    "short-cited": {
        # Qwen2.5-1.5B answered "write only the name, number or phrase" in English with a
        # bare "[2]"; "with the answer's words" keeps the words in.
        "en": (
            "Answer the question in English, as briefly as possible but with the answer's "
            "words, and end with the number of the source in square brackets."
        ),
        "ru": (
            "Ответь на вопрос по-русски, как можно короче, но словами ответа, и в конце "
            "укажи номер источника в квадратных скобках."
        ),
    },
    "sentence": {
        "en": (
            "Answer the question briefly, in one sentence, in English, and end the sentence "
            "with the number of the source in square brackets."
        ),
        "ru": (
            "Ответь на вопрос коротко, одним предложением, по-русски, и в конце предложения "
            "укажи номер источника в квадратных скобках."
        ),
    },
}
_INSTRUCTIONS["short-zero-shot"] = _INSTRUCTIONS["short"]  # the same, without the example
# "short" shows the model one worked exchange first (a user turn in the real format, the
# assistant's reply a few words from the source): told "as briefly as possible", Qwen2.5-0.5B
# still answered English questions with a sentence that restates the question ("Jared Allen
# had 136 career sacks."); with the example it answers "136". Token F1 zero-shot -> example,
# benchmarks/answer_quality.py (24 questions, 240 paragraphs): 1.5B ru 0.42 -> 0.54, en
# 0.64 -> 0.71; 0.5B en 0.30 -> 0.48, ru 0.33 -> 0.28 (it misreads Russian sources either
# way). The example is about nothing a memory is likely to hold, and its reply is flagged
# "training": false in reader examples (memory/distilling/datasets.py).
_EXAMPLE = {
    "en": (
        (
            "Pancakes",
            "The batter rests for 20 minutes; the pan is greased with butter, not oil, and "
            "heated until a drop of water hisses.",
        ),
        ("Trip", "We drove to Pskov in 2019 and stayed three nights."),
        "What is the pan greased with?",
        "butter",
    ),
    "ru": (
        (
            "Блины",
            "Тесто отстаивается 20 минут; сковороду смазывают сливочным маслом, а не "
            "растительным, и греют, пока капля воды не зашипит.",
        ),
        ("Поездка", "В 2019 году мы ездили в Псков и прожили там три ночи."),
        "Чем смазывают сковороду?",
        "сливочным маслом",
    ),
}
_WITH_EXAMPLE = {"short"}
_ASKS_FOR_CITATIONS = {"short-cited", "sentence"}


def asks_for_citations(style: str) -> bool:
    """Whether the prompt of this answer style asks the model to write the [n] itself."""
    return style in _ASKS_FOR_CITATIONS


ANSWER_STYLES = tuple(_INSTRUCTIONS)
DEFAULT_ANSWER_STYLE = "short"  # [llm] answer_style
_SOURCES = {"en": "Sources:", "ru": "Источники:"}
_QUESTION = {"en": "Question:", "ru": "Вопрос:"}
_NO_SOURCES = {"en": "(none found)", "ru": "(ничего не найдено)"}
_NOT_IN_MEMORY = {
    "en": "Memory holds nothing about this: none of the stored material matches the question.",
    "ru": "В памяти об этом ничего нет: ни один сохранённый материал не подходит к вопросу.",
}


def answer_language(question: str) -> str:
    """ "ru" or "en": the language the answer is written in (other scripts get English)."""
    return "ru" if detect_language(question) == "ru" else "en"


def not_in_memory(question: str) -> str:
    """The answer when retrieval found nothing relevant, in the question's language."""
    return _NOT_IN_MEMORY[answer_language(question)]


def format_source(source: Source, number: int) -> str:
    # The title and locator, not the file path: a small model copies long paths into its
    # answer, and the person sees the paths in the source list anyway.
    where = " · ".join(dict.fromkeys(p for p in (source.title, source.locator) if p))
    head = f"[{number}]" + (f" {where}" if where else "")
    text = " ".join(source.text.split())
    if len(text) > MAX_SOURCE_CHARS:
        text = text[:MAX_SOURCE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{head}\n{text}"


def build_messages(
    question: str,
    sources: Sequence[Source],
    history: Sequence[dict[str, str]] = (),
    style: str = DEFAULT_ANSWER_STYLE,
) -> list[dict[str, str]]:
    """System prompt in the question's language, the worked example (style "short"), earlier
    turns, then sources and question.

    Sources go into the last user message (not the system prompt): small models follow
    what is closest to the question, and earlier turns keep only their text, not their
    sources, so a long chat still fits the context window. `style` is one of ANSWER_STYLES
    ([llm] answer_style).
    """
    if style not in _INSTRUCTIONS:
        raise ValueError(f"answer style {style!r}: expected one of {', '.join(ANSWER_STYLES)}")
    lang = answer_language(question)
    how = _INSTRUCTIONS[style][lang]
    example: list[dict[str, str]] = []
    if style in _WITH_EXAMPLE:
        *notes, asked, answered = _EXAMPLE[lang]
        shown = [Source(n, "", "", title, "", 0.0, text) for n, (title, text) in enumerate(notes)]
        example = [
            {"role": "user", "content": _user_turn(lang, asked, shown, how)},
            {"role": "assistant", "content": answered},
        ]
    return [
        {"role": "system", "content": _SYSTEM[lang]},
        *example,
        *history,
        {"role": "user", "content": _user_turn(lang, question, sources, how)},
    ]


def _user_turn(lang: str, question: str, sources: Sequence[Source], how: str) -> str:
    blocks = "\n\n".join(format_source(s, n) for n, s in enumerate(sources, start=1))
    blocks = blocks or _NO_SOURCES[lang]
    return f"{_SOURCES[lang]}\n\n{blocks}\n\n{_QUESTION[lang]} {question}\n\n{how}"


# -- citations ----------------------------------------------------------------------------------

# [1], [1, 3], [1; 2], [1-3] (a range is read as its ends and everything between).
_CITATION = re.compile(r"\s?\[(\d+(?:\s*(?:[,;]|-|–)\s*\d+)*)\]")
_NUMBER_OR_RANGE = re.compile(r"(\d+)\s*(?:(?:-|–)\s*(\d+))?")


@dataclass(frozen=True)
class CitationCheck:
    text: str  # the answer with citations of sources that do not exist removed
    cited: tuple[int, ...]  # source numbers cited, in order of first citation
    invalid: tuple[int, ...]  # numbers the model cited that are no source


def check_citations(answer: str, n_sources: int) -> CitationCheck:
    """Keep citations that point at one of the n sources; drop the others, say which."""
    cited: list[int] = []
    invalid: list[int] = []

    def fix(match: re.Match) -> str:
        numbers: list[int] = []
        for lo, hi in _NUMBER_OR_RANGE.findall(match.group(1)):
            a = int(lo)
            b = int(hi) if hi else a
            numbers += range(a, b + 1) if a <= b and b - a < 50 else [a, b]
        good = [n for n in dict.fromkeys(numbers) if 1 <= n <= n_sources]
        for n in numbers:
            target = cited if n in good else invalid
            if n not in target:
                target.append(n)
        if not good:
            return ""
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return lead + "".join(f"[{n}]" for n in good)

    text = _CITATION.sub(fix, answer)
    return CitationCheck(text.strip(), tuple(cited), tuple(invalid))


def added_citations(cited: Sequence[int], model_cited: Sequence[int]) -> str:
    """ " [1][2]": the citations mem attributed to an answer in which the model wrote none, to
    show after the streamed reply (the default prompt does not ask the model to cite, so a
    stream has none); "" when the model cited."""
    if not cited or model_cited:
        return ""
    return " " + "".join(f"[{n}]" for n in cited)


# -- tidying: what a small model wraps around its answer ---------------------------------------

# Qwen2.5-1.5B sometimes opens with a line about the answer ("Вот ответ на вопрос по-русски:",
# seen on the test notes and on XQuAD) and closes with "Источник: [1]" after citing [1].
_LEAD_IN = re.compile(
    r"^[^\n\[\]\d]{0,80}(?:ответ|answer)[^\n\[\]\d]{0,80}:[ \t]*\n\s*\n(?=\S)", re.IGNORECASE
)
_SOURCE_TAIL = re.compile(
    r"(?:(?<=[.!?\]\n])|^)\s*(?:источники?|sources?)\s*:\s*(\[\d+\](?:\s*,?\s*\[\d+\])*)\.?\s*$",
    re.IGNORECASE,
)


def tidy_answer(answer: str) -> str:
    """The answer without a lead-in line ending in ":" and without a closing "Source: [n]"
    that repeats a citation the answer already made."""
    text = _LEAD_IN.sub("", answer.strip(), count=1)
    tail = _SOURCE_TAIL.search(text)
    if tail:
        body = text[: tail.start()]
        if set(re.findall(r"\[(\d+)\]", tail.group(1))) <= set(re.findall(r"\[(\d+)\]", body)):
            text = body.rstrip()
    return text


# -- attribution: checking the model's citations against the sources' words -------------------

# A sentence is attributed to the source that holds most of its words (Snowball stems, so
# «Варшавы» matches «Варшава»), if that source holds at least half of them: a sentence not
# drawn from the sources (a refusal, a guess) shares few words with any and stays uncited.
MIN_ATTRIBUTION_SHARE = 0.5
# A model's citation stands unless another source holds clearly more of the sentence's words:
# Qwen2.5-1.5B often answered from [1] and cited [2] (issue 15's note has the figures).
CITATION_MARGIN = 0.2
# Sentence ends; a citation right after the full stop ("… году. [2]") stays with its sentence.
_SEGMENT = re.compile(r"(?<=[.!?…])\s+(?!\[\d)")


def _source_stems(sources: Sequence[Source]) -> list[set[str]]:
    from mem.index.lexical import analyze

    return [set(analyze(s.text)) for s in sources]


def _best(text: str, stems: Sequence[set[str]]) -> tuple[list[float], int | None]:
    """Each source's share of the text's words (citations left out), and the source (0-based)
    holding the most of them if it holds at least MIN_ATTRIBUTION_SHARE."""
    from mem.index.lexical import analyze

    words = set(analyze(_CITATION.sub(" ", text)))
    shares = [len(words & s) / len(words) if words else 0.0 for s in stems]
    best = max(range(len(shares)), key=shares.__getitem__, default=None)
    if best is None or shares[best] < MIN_ATTRIBUTION_SHARE:
        return shares, None
    return shares, best


def attribute(answer: str, sources: Sequence[Source]) -> tuple[int, ...]:
    """The source (as a 1-based number) a text is drawn from, if any."""
    _, best = _best(answer, _source_stems(sources))
    return () if best is None else (best + 1,)


@dataclass(frozen=True)
class Attribution:
    text: str  # the answer with each sentence citing the source it is drawn from
    cited: tuple[int, ...]  # source numbers the text now cites, in order of first citation


def verify_citations(answer: str, sources: Sequence[Source]) -> Attribution:
    """Per sentence: keep the model's citation when its source holds the sentence's words;
    cite the source that does when the model cited none or one that clearly holds fewer.

    Run after `check_citations` (numbers of no source are already gone).
    """
    stems = _source_stems(sources)  # once per answer, not once per sentence
    out, cited = [], []
    for segment in _SEGMENT.split(answer.strip()):
        given = [int(n) for n in re.findall(r"\[(\d+)\]", segment)]
        shares, best = _best(segment, stems)
        held = max((shares[n - 1] for n in given if 1 <= n <= len(shares)), default=0.0)
        if best is not None and (
            held < MIN_ATTRIBUTION_SHARE or shares[best] - held > CITATION_MARGIN
        ):
            segment = _CITATION.sub("", segment).rstrip() + f" [{best + 1}]"
            given = [best + 1]
        out.append(segment)
        cited += [n for n in given if n not in cited]
    return Attribution(" ".join(out), tuple(cited))

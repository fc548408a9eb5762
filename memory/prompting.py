"""Prompts for answers from memory, and the citation check that runs after generation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mem.index.language import detect_language
from mem.memory.records import Source

# A long chunk is cut so that k sources and the reply fit a small model's context.
MAX_SOURCE_CHARS = 1500

_SYSTEM = {
    "en": (
        "You are the user's memory. Answer the question using only the numbered sources "
        "from the user's notes, documents, lectures and chats. After each statement, cite "
        "the source it comes from as [1], [2]. If the sources do not contain the answer, "
        "say that your memory holds nothing about it; never make up facts. Answer in English, "
        "briefly."
    ),
    "ru": (
        "Ты — память пользователя. Отвечай на вопрос, опираясь только на пронумерованные "
        "источники из его заметок, документов, лекций и переписок. После каждого утверждения "
        "указывай источник в виде [1], [2]. Если в источниках ответа нет, скажи, что в памяти "
        "об этом ничего нет; ничего не выдумывай. Отвечай по-русски, кратко."
    ),
}
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
    where = " · ".join(p for p in (source.title, source.locator) if p)
    head = f"[{number}] {source.source}" + (f" ({where})" if where else "")
    text = " ".join(source.text.split())
    if len(text) > MAX_SOURCE_CHARS:
        text = text[:MAX_SOURCE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{head}\n{text}"


def build_messages(
    question: str,
    sources: Sequence[Source],
    history: Sequence[dict[str, str]] = (),
) -> list[dict[str, str]]:
    """System prompt in the question's language, earlier turns, then sources and question.

    Sources go into the last user message (not the system prompt): small models follow
    what is closest to the question, and earlier turns keep only their text, not their
    sources, so a long chat still fits the context window.
    """
    lang = answer_language(question)
    blocks = "\n\n".join(format_source(s, n) for n, s in enumerate(sources, start=1))
    blocks = blocks or _NO_SOURCES[lang]
    user = f"{_SOURCES[lang]}\n\n{blocks}\n\n{_QUESTION[lang]} {question}"
    return [
        {"role": "system", "content": _SYSTEM[lang]},
        *history,
        {"role": "user", "content": user},
    ]


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

"""SFT examples from selected chunks: several restatements of each fact, in its own language.

One plain pass of fine-tuning does not teach a fact; seeing it restated several ways does.
Per chunk: question/answer pairs, a paraphrase, a summary, and for chats the user→assistant
turns themselves. The default generator is offline and deterministic (extractive); a
`Teacher` (any LLM behind `generate(messages) -> str`) writes better ones when configured.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from mem.corpus.text import said_in, words
from mem.distill.records import Example, ExampleKind, SourceItem

log = logging.getLogger("mem.distill")

_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=[\"«(\[]?[A-ZА-ЯЁ0-9])|\n+")
# "Name: " at the start of a turn in a chat chunk (ingest/conversations.py format_turn).
_SPEAKER = re.compile(r"(?:^|(?<=\n\n))[^\n:]{1,40}: ")
_STOCK_QUESTION = re.compile(
    r"^\W*(ok(ay)?|thanks?( you)?|continue|go on|ок|спасибо|продолжай|дальше|да|нет)\W*$",
    re.IGNORECASE,
)
# A name: capitalised words in a row ("Питтсбург Стилерс", "Super Bowl 50").
_NAME = re.compile(r"\b[A-ZА-ЯЁ][\w\-]+(?:\s+(?:[A-ZА-ЯЁ][\w\-]+|\d+\b))*")
# Capitalised by grammar, not because they name something, when they open a sentence.
_OPENERS = {
    "a", "an", "the", "in", "on", "at", "this", "that", "these", "after", "before", "during",
    "then", "however", "в", "на", "по", "это", "эти", "затем", "после", "до", "во", "однако",
    "когда", "хотя", "так", "также", "но", "и", "а", "с", "со", "к", "из", "за", "для",
}  # fmt: skip
_DEFINITION = {
    "ru": re.compile(
        r"^(?P<term>[«\"]?[A-ZА-ЯЁ][\w\-«»\" ]{0,50}?)\s+[—–-]\s+(?:это\s+)?(?P<body>.{12,})$"
    ),
    "en": re.compile(
        r"^(?P<term>(?:The\s+|An?\s+)?[A-Z][\w\-]*(?:\s+[\w\-]+){0,4}?)\s+(?:is|are|means|"
        r"refers to)\s+(?P<body>(?:a|an|the|one|used)\b.{8,})$"
    ),
}

# Prompt templates: {title}, {where}, {topic}, {question}, {start} are filled per item.
_TEMPLATES = {
    "ru": {
        "summary_doc": "Кратко изложи, о чём «{title}»{where}.",
        "summary_chat": "О чём мы говорили в разговоре «{title}»{where}?",
        "summary_chat_answer": "Вопрос был такой: «{question}» Коротко: {lead}",
        "section": "Что написано в разделе «{topic}» («{title}»)?",
        "define": "Что такое {topic}?",
        "cloze": "Закончи фразу из «{title}»: «{start}…»",
        "about": "Что ты знаешь про «{topic}»?",
        "paraphrase_doc": "Перечисли основные мысли из «{title}»{where}.",
        "paraphrase_chat": "Напомни, что ты знаешь об этом: {question}",
    },
    "en": {
        "summary_doc": "Briefly, what does «{title}»{where} say?",
        "summary_chat": "What did we talk about in the conversation «{title}»{where}?",
        "summary_chat_answer": "The question was: “{question}” In short: {lead}",
        "section": "What does the section «{topic}» of «{title}» say?",
        "define": "What is {topic}?",
        "cloze": "Finish this sentence from «{title}»: “{start}…”",
        "about": "What do you know about {topic}?",
        "paraphrase_doc": "List the main points of «{title}»{where}.",
        "paraphrase_chat": "Remind me what you know about this: {question}",
    },
}


class Teacher(Protocol):
    """Any LLM: a chat in, the reply text out."""

    def generate(self, messages: list[dict]) -> str: ...


class Generator(Protocol):
    name: str

    def examples(self, item: SourceItem) -> list[Example]: ...


def sentences(text: str) -> list[str]:
    """Sentences, with list markers and other fragments of under three words ("1.", "a.",
    "Siri") joined to what follows them."""
    out: list[str] = []
    pending = ""
    for piece in _SENTENCE.split(text):
        piece = (piece or "").strip()
        if not piece:
            continue
        piece = f"{pending} {piece}".strip() if pending else piece
        if len(piece.split()) < 3:
            pending = piece
            continue
        out.append(piece)
        pending = ""
    if pending:
        out.append(pending)
    return out


def names(sentence: str) -> list[str]:
    """Proper names in a sentence ("Питтсбург Стилерс", "Super Bowl 50"): the sentence's
    first word only when it starts a longer name, and never a grammar word like "The"."""
    out = []
    for match in _NAME.finditer(sentence):
        words = match.group(0).split()
        lone_opener = len(words) < 2 and not sentence[: match.start()].strip(' «"(')
        while words and words[0].lower() in _OPENERS:
            words = words[1:]
        if lone_opener or not words or len(words[0]) < 3:
            continue
        out.append(" ".join(words))
    return out


def _points(text: str, limit: int) -> list[str]:
    """Sentences that say something: an opener like "Sure!" or "Great!" does not."""
    return [s for s in sentences(text) if len(s.split()) >= 4][:limit]


def _lead(text: str, max_sentences: int = 3, max_words: int = 80) -> str:
    picked, words = [], 0
    for sentence in _points(text, 1000) or sentences(text):
        n = len(sentence.split())
        if picked and words + n > max_words:
            break
        picked.append(sentence)
        words += n
        if len(picked) >= max_sentences:
            break
    return " ".join(picked)


def _example(item: SourceItem, kind: ExampleKind, prompt: str, answer: str) -> Example:
    return Example(
        messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        source=item.chunk_id,
        kind=kind,
        group=item.group,
    )


def _templates(item: SourceItem) -> dict[str, str]:
    return _TEMPLATES["ru" if item.language == "ru" else "en"]


def _where(item: SourceItem) -> str:
    if item.turns:
        return f" ({item.date})" if item.date else ""
    return f" ({item.locator})" if item.locator and item.locator != item.title else ""


def chat_pairs(item: SourceItem) -> list[tuple[str, str]]:
    """(user, assistant) turn pairs worth learning: a stock "ok"/"thanks" teaches nothing."""
    pairs = []
    for n in range(len(item.turns) - 1):
        (role, text), (next_role, reply) = item.turns[n], item.turns[n + 1]
        if role != "user" or next_role != "assistant":
            continue
        if _STOCK_QUESTION.match(text) or len(reply.split()) < 3:
            continue
        pairs.append((text.strip(), reply.strip()))
    return pairs


class OfflineGenerator:
    """Deterministic, extractive restatements: no model, always available."""

    name = "offline"

    def examples(self, item: SourceItem) -> list[Example]:
        if item.turns:
            return self._chat(item)
        return self._document(item)

    def _chat(self, item: SourceItem) -> list[Example]:
        t = _templates(item)
        pairs = chat_pairs(item)
        out = [_example(item, "chat", q, a) for q, a in pairs]
        if pairs:
            question, answer = max(pairs, key=lambda p: len(p[1]))
            title, where = item.title or "—", _where(item)
            short_q = _lead(question, 1, 40)
            lead = _lead(answer, 2, 60)
            out.append(
                _example(
                    item,
                    "summary",
                    t["summary_chat"].format(title=title, where=where),
                    t["summary_chat_answer"].format(question=short_q, lead=lead),
                )
            )
            points = _points(answer, 6)
            if len(points) >= 2:
                out.append(
                    _example(
                        item,
                        "paraphrase",
                        t["paraphrase_chat"].format(question=short_q),
                        "\n".join(f"- {p}" for p in points),
                    )
                )
        # The chunk's own text ("Name: …" turn prefixes dropped) holds facts too.
        text = _SPEAKER.sub("", item.text)
        if not pairs:
            # A piece of a long answer whose question sits in an earlier chunk: restate the
            # piece as a document would be.
            return out + self._document(replace(item, text=text))
        found = sentences(text)
        title = item.title or "—"
        return (
            out
            + self._definitions(item, found, t)
            + self._clozes(item, found, t, title)
            + self._about(item, found, t)
        )

    def _document(self, item: SourceItem) -> list[Example]:
        t = _templates(item)
        title, where = item.title or item.source, _where(item)
        found = sentences(item.text)
        out: list[Example] = []
        lead = _lead(item.text)
        if lead:
            out.append(
                _example(item, "summary", t["summary_doc"].format(title=title, where=where), lead)
            )
        if item.headings:
            section = " > ".join(item.headings)
            body = _lead(item.text, 8, 200)
            out.append(_example(item, "qa", t["section"].format(topic=section, title=title), body))
        out += self._definitions(item, found, t)
        out += self._clozes(item, found, t, title)
        out += self._about(item, found, t)
        points = _points(item.text, 8)
        if len(points) >= 2:
            listed = "\n".join(f"- {p}" for p in points)
            prompt = t["paraphrase_doc"].format(title=title, where=where)
            out.append(_example(item, "paraphrase", prompt, listed))
        return out

    def _definitions(self, item: SourceItem, found: list[str], t: dict) -> list[Example]:
        pattern = _DEFINITION["ru" if item.language == "ru" else "en"]
        out = []
        for sentence in found:
            match = pattern.match(sentence)
            if match and len(out) < 3:
                term = match.group("term").strip(' «»"')
                # "A wheel is …" -> "What is a wheel?"
                term = re.sub(r"^(The|An?)\s", lambda m: m.group(0).lower(), term)
                out.append(_example(item, "qa", t["define"].format(topic=term), sentence))
        return out

    def _about(self, item: SourceItem, found: list[str], t: dict, limit: int = 6) -> list[Example]:
        """ "What do you know about <name>?" -> the sentences that mention it. People ask
        about a thing by its name, without the file it came from; several names per
        sentence restate its fact from several sides."""
        mentions: dict[str, list[str]] = {}
        for sentence in found:
            if len(sentence.split()) < 5:
                continue
            for name in names(sentence):
                said = mentions.setdefault(name, [])
                if len(said) < 2 and sentence not in said:
                    said.append(sentence)
        return [
            _example(item, "qa", t["about"].format(topic=name), " ".join(said))
            for name, said in list(mentions.items())[:limit]
        ]

    def _clozes(
        self, item: SourceItem, found: list[str], t: dict, title: str, limit: int = 6
    ) -> list[Example]:
        # A sentence with a number or a name in its second half is a fact worth recalling.
        out = []
        for sentence in found:
            words = sentence.split()
            if len(words) < 8 or len(out) >= limit:
                continue
            cut = len(words) // 2
            rest = " ".join(words[cut:])
            if not re.search(r"\d|\b[A-ZА-ЯЁ]\w+", rest):
                continue
            start = " ".join(words[:cut])
            out.append(_example(item, "qa", t["cloze"].format(title=title, start=start), sentence))
        return out


# Short answers copied from the text: the form `mem ask` asks for ([llm] answer_style =
# "short"), and a span a reader example can cite.
_TEACHER_QA = {
    "ru": (
        "Составь {n} пар «вопрос — ответ» по тексту ниже, на русском языке. Каждый вопрос — о "
        "своём факте текста (имя, число, дата, место, причина). Ответ — несколько слов из "
        "текста, без пересказа вопроса. Ответь JSON-списком объектов с ключами question и "
        "answer."
    ),
    "en": (
        "Write {n} question-answer pairs about the text below, in English. Each question asks "
        "about a different fact of the text (a name, a number, a date, a place, a reason). "
        "Each answer is a few words copied from the text, not a restatement of the question. "
        "Reply with a JSON list of objects with keys question and answer."
    ),
}
_TEACHER_PARAPHRASE = {
    "ru": "Перескажи текст ниже своими словами, сохранив все факты. Только пересказ.",
    "en": "Restate the text below in your own words, keeping every fact. Only the restatement.",
}
_TEACHER_SUMMARY = {
    "ru": "Кратко (2–3 предложения) изложи суть текста ниже.",
    "en": "Summarize the text below in two or three sentences.",
}


def _text(value: object) -> str:
    """A JSON answer as text: a list of answers ["A", "B"] reads "A, B", not "['A', 'B']"."""
    if isinstance(value, list):
        return ", ".join(str(v).strip() for v in value if str(v).strip())
    return str(value).strip()


def parse_qa(reply: str) -> list[tuple[str, str]]:
    """Question/answer pairs from a teacher's reply: a JSON list, else Q:/A: lines."""
    start, end = reply.find("["), reply.rfind("]")
    if start != -1 and end > start:
        try:
            data = json.loads(reply[start : end + 1])
            pairs = [
                (_text(d["question"]), _text(d["answer"]))
                for d in data
                if isinstance(d, dict) and d.get("question") and d.get("answer")
            ]
            if pairs:
                return pairs
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    found = re.findall(
        r"(?:^|\n)\s*(?:Q|В|Вопрос|Question)\s*[:.]\s*(.+?)\s*\n\s*(?:A|О|Ответ|Answer)\s*[:.]\s*"
        r"(.+?)(?=\n\s*(?:Q|В|Вопрос|Question)\s*[:.]|\Z)",
        reply,
        flags=re.S,
    )
    return [(q.strip(), a.strip()) for q, a in found if q.strip() and a.strip()]


def grounded(question: str, answer: str, text: str, same_language: bool = True) -> bool:
    """Whether a teacher's answer can be right: it is not the question's own words again
    ("Who is Polonia's local rival? -> Polonia"), and its words occur in the text it was
    asked about (in another language only its numbers can be checked). A small teacher
    invents facts ("When was Leda Gaga born? -> 1975"); training on them teaches the lie."""
    said = words(answer)
    if not said:
        return False
    asked = set(words(question))
    if all(said_in(word, asked) for word in said):
        return False
    source = set(words(text))
    checked = said if same_language else [w for w in said if any(c.isdigit() for c in w)]
    found = sum(said_in(word, source) for word in checked)
    return found >= 0.75 * len(checked)


class TeacherGenerator:
    """Restatements written by an LLM teacher; chats keep their own turn pairs too.

    A reply that cannot be used (empty, unparsable, an error) falls back to the offline
    generator for that item, so one bad answer never loses a chunk. So does every item once
    `budget_s` of teaching is spent: a night's run ends on time, whatever the backlog.
    """

    name = "llm"

    def __init__(
        self, teacher: Teacher, qa_pairs: int = 3, budget_s: float = 0.0, other_language_qa: int = 0
    ) -> None:
        self.teacher = teacher
        self.qa_pairs = qa_pairs
        # Pairs asked in the other language (English about a Russian text and the reverse):
        # one more restatement of each fact, and the form a cross-language question takes.
        self.other_language_qa = other_language_qa
        self.budget_s = budget_s  # 0: no limit
        self.fallback = OfflineGenerator()
        self.failures = 0
        self.taught = 0  # items the teacher wrote examples for
        self.over_budget = 0  # items left to the offline generator once the budget was spent
        self.examples_written = 0
        self.dropped_pairs = 0  # Q&A pairs whose answer is not in the text (grounded())
        self.seconds = 0.0  # time spent waiting for the teacher

    def report(self) -> dict:
        """What the teacher did, for the dataset's manifest (throughput: examples/minute)."""
        minutes = self.seconds / 60
        return {
            "taught_items": self.taught,
            "failed_items": self.failures,
            "over_budget_items": self.over_budget,
            "examples": self.examples_written,
            "dropped_pairs": self.dropped_pairs,
            "seconds": round(self.seconds, 1),
            "examples_per_minute": round(self.examples_written / minutes, 1) if minutes else None,
            "budget_s": self.budget_s,
        }

    def _keep_grounded(
        self, pairs: list[tuple[str, str]], text: str, same_language: bool
    ) -> list[tuple[str, str]]:
        kept = [(q, a) for q, a in pairs if grounded(q, a, text, same_language)]
        self.dropped_pairs += len(pairs) - len(kept)
        return kept

    def _ask(self, instruction: str, text: str) -> str:
        return self.teacher.generate([{"role": "user", "content": f"{instruction}\n\n{text}"}])

    def examples(self, item: SourceItem) -> list[Example]:
        if self.budget_s and self.seconds >= self.budget_s:
            self.over_budget += 1
            return self.fallback.examples(item)
        lang = "ru" if item.language == "ru" else "en"
        t = _TEMPLATES[lang]
        title, where = item.title or item.source, _where(item)
        started = time.monotonic()
        try:
            pairs = parse_qa(self._ask(_TEACHER_QA[lang].format(n=self.qa_pairs), item.text))
            paraphrase = self._ask(_TEACHER_PARAPHRASE[lang], item.text).strip()
            summary = self._ask(_TEACHER_SUMMARY[lang], item.text).strip()
            other = []
            if self.other_language_qa:
                instruction = _TEACHER_QA["en" if lang == "ru" else "ru"]
                reply = self._ask(instruction.format(n=self.other_language_qa), item.text)
                other = parse_qa(reply)[: self.other_language_qa]
        except Exception as error:  # a teacher is a remote or heavy thing: never fatal
            log.warning("teacher failed on %s (%s); offline examples instead", item.chunk_id, error)
            pairs, paraphrase, summary, other = [], "", "", []
        finally:
            self.seconds += time.monotonic() - started
        if not pairs or not paraphrase or not summary:
            self.failures += 1
            return self.fallback.examples(item)
        pairs = self._keep_grounded(pairs[: self.qa_pairs], item.text, True)
        other = self._keep_grounded(other, item.text, False)
        kind_prompt = "summary_chat" if item.turns else "summary_doc"
        out = [_example(item, "chat", q, a) for q, a in chat_pairs(item)]
        out += [_example(item, "qa", q, a) for q, a in pairs]
        out += [_example(item, "qa_other", q, a) for q, a in other]  # none parsed: the rest stays
        out.append(
            _example(
                item, "paraphrase", t["paraphrase_doc"].format(title=title, where=where), paraphrase
            )
        )
        out.append(
            _example(item, "summary", t[kind_prompt].format(title=title, where=where), summary)
        )
        self.taught += 1
        self.examples_written += len(out)
        return out


def make_generator(
    setting: str,
    teacher: Callable[[], Teacher] | None = None,
    budget_s: float = 0.0,
    other_language_qa: int = 0,
    qa_pairs: int = 3,
) -> Generator:
    """The generator `[distill] teacher` names: "offline", or "llm" with the configured backend.

    `teacher` is the hook for the LLM backend: a factory so the backend (a model load, an
    endpoint check) is only touched when the setting asks for it.
    """
    if setting == "offline":
        return OfflineGenerator()
    if setting == "llm":
        if qa_pairs < 1:
            raise ValueError(f"[distill] qa_pairs must be at least 1, not {qa_pairs}")
        if teacher is None:
            raise ValueError('[distill] teacher = "llm" needs an LLM backend; none is configured')
        return TeacherGenerator(teacher(), qa_pairs, budget_s, other_language_qa)
    raise ValueError(f'[distill] teacher must be "offline" or "llm", not {setting!r}')


def generate(generator: Generator, items: Iterable[SourceItem]) -> list[Example]:
    out: list[Example] = []
    for item in items:
        out += generator.examples(item)
    return out

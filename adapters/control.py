"""A general-knowledge control set: what any base model answers before distillation and
should still answer after it.

The owner's material says nothing about these, so a drop here is forgetting (the adapter
overwrote general ability), not learning. Short, unambiguous answers in Russian and English,
written for this project; a config path can replace them with the user's own set.
"""

from __future__ import annotations

import json
from pathlib import Path

from mem.adapters.data import Example, HeldoutQuestion

GENERAL: tuple[tuple[str, str], ...] = (
    ("Какая столица Франции?", "Париж"),
    ("Какая столица Японии?", "Токио"),
    ("Какая столица России?", "Москва"),
    ("Сколько будет два плюс два?", "4"),
    ("Сколько дней в неделе?", "7"),
    ("Сколько месяцев в году?", "12"),
    ("Какого цвета небо в ясный день?", "голубого"),
    ("Какая планета ближе всех к Солнцу?", "Меркурий"),
    ("Кто написал роман «Война и мир»?", "Лев Толстой"),
    ("Кто написал «Евгения Онегина»?", "Пушкин"),
    ("При какой температуре по Цельсию замерзает вода?", "0"),
    ("Какой химический символ у кислорода?", "O"),
    ("На каком континенте находится Египет?", "Африка"),
    ("Какое самое большое животное на Земле?", "синий кит"),
    ("Как называется самая длинная река Европы?", "Волга"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of the United Kingdom?", "London"),
    ("How many legs does a spider have?", "8"),
    ("How many hours are in a day?", "24"),
    ("What is three times three?", "9"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What gas do plants absorb from the air?", "carbon dioxide"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean"),
    ("At what temperature in Celsius does water boil at sea level?", "100"),
    ("What is the chemical symbol for gold?", "Au"),
    ("Which language is spoken in Brazil?", "Portuguese"),
    ("What is the freezing point of water in Fahrenheit?", "32"),
    ("What color do you get by mixing blue and yellow?", "green"),
)


def control_questions(path: str | Path | None = None) -> list[HeldoutQuestion]:
    """The built-in set, or a JSONL file of {"question", "answer"} rows."""
    if not path:
        return [HeldoutQuestion(q, a, source="control", kind="general") for q, a in GENERAL]
    rows = []
    for n, line in enumerate(Path(path).expanduser().read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(HeldoutQuestion(str(row["question"]), str(row["answer"]), "control"))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{n}: expected {{'question', 'answer'}} JSON") from error
    return rows


def as_examples(questions: list[HeldoutQuestion]) -> list[Example]:
    """The control questions as chat examples, for a teacher-forced loss on their answers."""
    return [
        Example(
            ({"role": "user", "content": q.question}, {"role": "assistant", "content": q.answer}),
            source="control",
        )
        for q in questions
    ]

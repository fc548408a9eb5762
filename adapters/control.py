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
    # 70 more, so that one flipped answer moves control_recall by 0.01, not 0.033.
    ("Какая столица Германии?", "Берлин"),
    ("Какая столица Италии?", "Рим"),
    ("Какая столица Канады?", "Оттава"),
    ("Какая столица Китая?", "Пекин"),
    ("Какая столица Великобритании?", "Лондон"),
    ("Сколько часов в сутках?", "24"),
    ("Сколько лет в одном веке?", "100"),
    ("Сколько ног у паука?", "8"),
    ("Сколько будет три умножить на три?", "9"),
    ("Сколько будет десять минус три?", "7"),
    ("Сколько колёс у велосипеда?", "2"),
    ("Сколько дней в високосном году?", "366"),
    ("Какую планету называют Красной планетой?", "Марс"),
    ("Какая планета третья от Солнца?", "Земля"),
    ("Вокруг какой звезды вращается Земля?", "Солнце"),
    ("Какой газ растения поглощают из воздуха?", "углекислый газ"),
    ("Кто написал «Мёртвые души»?", "Гоголь"),
    ("Кто написал «Ромео и Джульетту»?", "Шекспир"),
    ("Кто создал периодическую таблицу химических элементов?", "Менделеев"),
    ("Каким прибором измеряют температуру?", "термометр"),
    ("При какой температуре по Цельсию кипит вода?", "100"),
    ("Какой химический символ у золота?", "Au"),
    ("Какой химический символ у железа?", "Fe"),
    ("На каком континенте находится Бразилия?", "Южная Америка"),
    ("Какой океан самый большой?", "Тихий"),
    ("На каком языке говорят в Бразилии?", "португальском"),
    ("Какой цвет получится, если смешать синий и жёлтый?", "зелёный"),
    ("Какое самое глубокое озеро в мире?", "Байкал"),
    ("Какая самая высокая гора в России?", "Эльбрус"),
    ("Какой металл жидкий при комнатной температуре?", "ртуть"),
    ("Какая валюта в Японии?", "иена"),
    ("Как называется самая длинная река в мире?", "Нил"),
    ("Какой орган перекачивает кровь по телу?", "сердце"),
    ("Какое животное называют царём зверей?", "лев"),
    ("Какой город называют Северной столицей России?", "Санкт-Петербург"),
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Australia?", "Canberra"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of Canada?", "Ottawa"),
    ("How many days are in a week?", "7"),
    ("How many months are in a year?", "12"),
    ("How many minutes are in an hour?", "60"),
    ("What is two plus two?", "4"),
    ("What is ten minus four?", "6"),
    ("How many sides does a hexagon have?", "6"),
    ("How many wheels does a tricycle have?", "3"),
    ("Which planet is closest to the Sun?", "Mercury"),
    ("What is the fastest land animal?", "the cheetah"),
    ("What is the hottest planet in the Solar System?", "Venus"),
    ("What gas do humans need to breathe to live?", "oxygen"),
    ("What is the chemical formula of water?", "H2O"),
    ("What is the chemical symbol for iron?", "Fe"),
    ("Who wrote War and Peace?", "Leo Tolstoy"),
    ("Who painted The Starry Night?", "Vincent van Gogh"),
    ("Who discovered penicillin?", "Alexander Fleming"),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong"),
    ("On which continent is Egypt?", "Africa"),
    ("What is the longest river in the world?", "the Nile"),
    ("What is the smallest prime number?", "2"),
    ("What is the largest animal on Earth?", "the blue whale"),
    ("Which metal is liquid at room temperature?", "mercury"),
    ("What is the currency of Japan?", "yen"),
    ("Which language is spoken in France?", "French"),
    ("What color is the sky on a clear day?", "blue"),
    ("Which animal is called the king of the jungle?", "the lion"),
    ("Which organ pumps blood through the body?", "the heart"),
    ("How many players are on a soccer team on the field?", "11"),
    ("What is the boiling point of water in Fahrenheit?", "212"),
    ("What is the largest country in the world by area?", "Russia"),
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

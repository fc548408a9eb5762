"""Self-rehearsal: general prompts answered by the frozen base model itself, trained on
beside the memory's examples, so the adapter keeps the base's behaviour off its topics.

Without it, a core self trained on short factual answers ("Пэнтерс") also starts answering
general questions in one or two words and loses answers the base model reached by saying a
sentence ("There are 24 hours in a day."): XQuAD ru, control recall 0.433 -> 0.300. The base's
own greedy answers cost nothing to label and pull the adapter back to its starting point
wherever the memory has nothing to say (the idea of self-distillation and of self-synthesized
rehearsal: Yang et al. 2024, "Self-Distillation Bridges Distribution Gap in Language Model
Fine-Tuning", arXiv:2402.13669; Huang et al. 2024, "Mitigating Catastrophic Forgetting in Large
Language Models with Self-Synthesized Rehearsal", arXiv:2403.01244).

The prompts are written for this project and share no fact with the control set
(mem.adapters.control), which measures the forgetting. They are model-specific data, so they
are made at training time and never written to a dataset or an export.

Off by default ([lora] rehearsal = 0): on XQuAD (benchmarks/distill_gain.py) it cut the
Russian control recall drop from 0.133 to 0.078 but made the English one fall from 0.561 to
0.356, and the English adapter's answers with sources from 0.600 to 0.500.
"""

from __future__ import annotations

from collections.abc import Sequence

from mem.adapters.data import Example
from mem.adapters.evaluate import EvalOptions, generate_answers

KIND = "rehearsal"

# Russian and English in turn, so any first N keeps both languages.
PROMPTS: tuple[str, ...] = (
    "Какая столица Греции?",
    "What is the capital of Spain?",
    "Сколько будет семь умножить на восемь?",
    "What is twelve divided by four?",
    "Сколько минут в часе?",
    "How many seconds are in a minute?",
    "Сколько сторон у треугольника?",
    "How many sides does a square have?",
    "Кто написал «Преступление и наказание»?",
    "Who painted the Mona Lisa?",
    "Кто открыл закон всемирного тяготения?",
    "Who developed the theory of relativity?",
    "Какая самая большая планета Солнечной системы?",
    "Which planet has the most prominent rings?",
    "Что такое фотосинтез? Ответь одним предложением.",
    "What is gravity? Answer in one sentence.",
    "Переведи на английский: «доброе утро».",
    'Translate into Russian: "thank you very much".',
    "Назови три основных цвета.",
    "Name three fruits.",
    "На каком языке говорят в Испании?",
    "What language is spoken in Mexico?",
    "В каком году человек впервые полетел в космос?",
    "In which year did World War II end?",
    "Сколько будет сто минус тридцать семь?",
    "What is fifteen plus twenty-seven?",
    "Как называется спутник Земли?",
    "What do bees make?",
    "Что тяжелее: килограмм железа или килограмм ваты?",
    "Which is longer, a week or a month?",
    "Какое время года наступает после зимы?",
    "What season comes after autumn?",
    "Из чего делают хлеб?",
    "What is ice made of?",
    "Объясни в двух предложениях, что такое инфляция.",
    "Explain in two sentences what a computer virus is.",
    "Как называют детёныша коровы?",
    'What is the opposite of "ancient"?',
    "Какая самая высокая гора в мире?",
    "What is the largest desert in the world?",
    "Сколько континентов на Земле?",
    "What is the tallest animal?",
    "Какое море омывает Крым?",
    "What is the main ingredient of guacamole?",
    "Напиши короткое поздравление с днём рождения.",
    "Write a one-line thank-you note to a colleague.",
    "Кто написал «Мастера и Маргариту»?",
    "Who wrote the novel 1984?",
)


def rehearsal_examples(
    model,
    tokenizer,
    count: int,
    max_new_tokens: int = 160,
    prompts: Sequence[str] = PROMPTS,
    progress: bool = False,
) -> list[Example]:
    """The first `count` prompts with the base model's own greedy answers, as chat examples
    in the closed-book form the control set is asked in. An answer cut off at max_new_tokens
    is dropped: trained on, it would teach the model to stop mid-sentence."""
    chosen = list(prompts[: max(0, count)])
    if not chosen:
        return []
    from tqdm import tqdm

    options = EvalOptions(max_new_tokens=max_new_tokens)
    with tqdm(
        total=len(chosen), desc="rehearsal", unit="prompt", leave=False, disable=not progress
    ) as bar:
        answers = generate_answers(
            model, tokenizer, chosen, options, finished_only=True, on_batch=bar.update
        )
    return [
        Example(
            ({"role": "user", "content": prompt}, {"role": "assistant", "content": answer}),
            source=KIND,
            kind=KIND,
        )
        for prompt, answer in zip(chosen, answers, strict=True)
        if answer
    ]

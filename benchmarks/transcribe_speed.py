"""Our `transcribe()` against raw faster-whisper on the same speech, in the same run; and WER.

    python benchmarks/transcribe_speed.py [--rounds 3]

Generates ~60 s of speech (English with espeak-ng, Russian with Festival's msu_ru_nsh voice),
then, after loading both models, times alternately:
  raw:  faster_whisper.WhisperModel(...).transcribe(<path>) with the same options, segments consumed
  ours: mem.ingest.audio.transcribe(<path>) (ffprobe + ffmpeg decode + records)
and prints the median of each, their ratio (goal <= 1.05) and the real-time factor. WER is
against the text that was spoken (case and punctuation ignored, digits read out as words).
espeak-ng's Russian is scored too, for reference: Whisper base hears it as Polish or Latin.
Needs: apt-get install ffmpeg espeak-ng sox festival festvox-ru
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OUT = Path(__file__).resolve().parent / "out" / "transcribe"

EN_TEXT = (
    "Every morning the old library opens its heavy doors at nine o'clock. "
    "Students come to read about physics, chemistry and the history of science. "
    "The reading room has twenty long tables and a large window facing the garden. "
    "In the afternoon a teacher gives a short lecture about the stars and the planets. "
    "After the lecture, people ask questions and write notes in their small books. "
    "The library closes at six in the evening, and the keeper turns off the lights."
)
RU_TEXT = (
    "Каждое утро старая библиотека открывает свои двери в девять часов. "
    "Студенты приходят читать книги по физике, химии и истории науки. "
    "В читальном зале двадцать длинных столов и большое окно в сад. "
    "Днём преподаватель читает короткую лекцию о звёздах и планетах. "
    "После лекции люди задают вопросы и пишут заметки в своих тетрадях. "
    "Библиотека закрывается в шесть часов вечера."
)

EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
RU_ONES = (
    "ноль один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать "
    "тринадцать четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать"
).split()
RU_TENS = "_ _ двадцать тридцать сорок пятьдесят шестьдесят семьдесят восемьдесят девяносто".split()
RU_HUNDREDS = "_ сто двести триста четыреста пятьсот шестьсот семьсот восемьсот девятьсот".split()


def number_words(n: int, lang: str) -> str:
    """Cardinal numbers below 1000 (all our texts need); larger ones stay as digits."""
    if n >= 1000:
        return str(n)
    ones, tens = (RU_ONES, RU_TENS) if lang == "ru" else (EN_ONES, EN_TENS)
    parts = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts += [RU_HUNDREDS[hundreds]] if lang == "ru" else [ones[hundreds], "hundred"]
    if rest >= 20:
        parts.append(tens[rest // 10])
        if rest % 10:
            parts.append(ones[rest % 10])
    elif rest or not parts:
        parts.append(ones[rest])
    return " ".join(parts)


def normalise(text: str, lang: str) -> list[str]:
    text = text.lower().replace("ё", "е").replace("o'clock", "oclock")
    text = re.sub(r"(\d+)-[a-zа-я]+", r"\1", text)  # "20-ти" is said "двадцати"; score the number
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()), lang)} ", text)
    return re.findall(r"[\w']+", text)


def wer(reference: str, hypothesis: str, lang: str) -> float:
    ref, hyp = normalise(reference, lang), normalise(hypothesis, lang)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))


def run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def synthesise() -> dict[str, Path]:
    missing = [t for t in ("ffmpeg", "espeak-ng", "text2wave", "soxi") if not shutil.which(t)]
    if missing:
        sys.exit(f"missing {missing}: apt-get install ffmpeg espeak-ng sox festival festvox-ru")
    OUT.mkdir(parents=True, exist_ok=True)
    files = {"en": OUT / "en.wav", "ru": OUT / "ru.wav", "ru-espeak": OUT / "ru-espeak.wav"}
    run("espeak-ng", "-v", "en", "-w", files["en"], EN_TEXT)
    run("espeak-ng", "-v", "ru", "-w", files["ru-espeak"], RU_TEXT)
    (OUT / "ru.txt").write_text(RU_TEXT, encoding="utf-8")
    run("text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", OUT / "ru.txt", "-o", files["ru"])
    return files


def seconds_of(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True)
    return float(out.stdout)


def runs(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from mem.ingest.audio import TranscribeOptions, transcribe
    from mem.ingest.whisper_model import resolve_whisper_model

    files = synthesise()
    timed = [files["en"], files["ru"]]
    audio_s = sum(seconds_of(p) for p in timed)
    cache = OUT / "cache"
    options = TranscribeOptions(device="cpu", compute_type="int8")

    started = time.perf_counter()
    model_dir = resolve_whisper_model(options.model, cache)
    raw_model = WhisperModel(model_dir, device="cpu", compute_type="int8")
    load_s = time.perf_counter() - started

    def raw() -> None:
        for path in timed:
            segments, _ = raw_model.transcribe(
                str(path),
                beam_size=options.beam_size,
                vad_filter=options.vad_filter,
                word_timestamps=options.word_timestamps,
            )
            list(segments)

    def ours() -> dict:
        return {p: transcribe(p, options, cache) for p in timed}

    transcripts = ours()  # warm-up: loads our cached model, fills the page cache
    raw()
    times: dict[str, list[float]] = {"raw": [], "ours": []}
    for round_ in range(args.rounds):
        order = [("raw", raw), ("ours", ours)]
        for name, fn in order if round_ % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)

    raw_s, ours_s = statistics.median(times["raw"]), statistics.median(times["ours"])
    en_s, ru_s = seconds_of(files["en"]), seconds_of(files["ru"])
    print(f"audio: {audio_s:.1f} s (en {en_s:.1f} + ru {ru_s:.1f})")
    print(f"model: whisper base int8 on CPU, {os.cpu_count()} cores; assemble+load {load_s:.1f} s")
    print(f"raw faster-whisper: {raw_s:.2f} s  (runs: {runs(times['raw'])})")
    print(f"our transcribe():   {ours_s:.2f} s  (runs: {runs(times['ours'])})")
    print(f"ratio ours/raw: {ours_s / raw_s:.3f}  (goal <= 1.05)")
    print(f"real-time factor: {ours_s / audio_s:.3f}  ({audio_s / ours_s:.1f}x real time)")

    for lang, text in (("en", EN_TEXT), ("ru", RU_TEXT)):
        t = transcripts[files[lang]]
        print(
            f"WER {lang}: {wer(text, t.text, lang):.3f}  "
            f"(detected {t.language} {t.language_probability:.2f})"
        )
    espeak_ru = files["ru-espeak"]
    auto = transcribe(espeak_ru, options, cache)
    forced = transcribe(espeak_ru, TranscribeOptions(language="ru", device="cpu"), cache)
    print(
        f"WER ru, espeak-ng voice (reference only): auto {wer(RU_TEXT, auto.text, 'ru'):.3f} "
        f"(detected {auto.language} {auto.language_probability:.2f}), "
        f"language=ru {wer(RU_TEXT, forced.text, 'ru'):.3f}"
    )


if __name__ == "__main__":
    main()

"""Transcription on real synthesised speech: espeak-ng (English) and Festival's Russian voice.

espeak-ng's Russian is too robotic for Whisper base (it is heard as Polish or Latin), so
Russian speech comes from Festival's msu_ru_nsh voice, which Whisper detects as ru (0.99).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mem.ingest.audio import (
    AudioError,
    Segment,
    TranscribeOptions,
    Transcript,
    Word,
    decode_audio,
    format_timestamp,
    to_srt,
    transcribe,
)
from mem.ingest.whisper_model import (
    PACKAGED_DIR_NAME,
    WhisperModelError,
    load_whisper_model,
    resolve_whisper_model,
)

EN_TEXT = (
    "The library opens at nine in the morning. Students borrow books about physics and history."
)
EN_WORDS = {"library", "opens", "morning", "students", "books", "physics", "history"}
RU_A = "Сегодня хорошая погода. Мы пойдём гулять в парк."
RU_B = "В библиотеке много интересных книг. Студенты изучают историю и математику."
RU_WORDS = {"сегодня", "хорошая", "погода", "гулять", "парк", "библиотеке", "книг", "студенты"}

TOOLS = ("ffmpeg", "ffprobe", "espeak-ng", "sox", "text2wave")
missing_tools = [t for t in TOOLS if shutil.which(t) is None]
# On a user's machine without the tools, skip with the install line; in CI (which installs
# them through `make test`) a missing tool must fail loudly instead.
pytestmark = pytest.mark.skipif(
    bool(missing_tools) and not os.environ.get("CI"),
    reason=f"needs {', '.join(missing_tools)}: apt-get install ffmpeg espeak-ng sox festival "
    "festvox-ru",
)


def sh(*cmd: str | Path, stdin: str | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, input=stdin, text=True)


def duration(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True)
    return float(out.stdout)


def speak_en(text: str, out: Path) -> Path:
    sh("espeak-ng", "-v", "en", "-w", out, text)
    return out


def speak_ru(text: str, out: Path) -> Path:
    source = out.with_suffix(".txt")
    source.write_text(text, encoding="utf-8")
    sh("text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", source, "-o", out)
    return out


def trimmed(path: Path) -> Path:
    """The same speech without leading/trailing silence, so onsets are known exactly."""
    out = path.with_name(path.stem + "-trim.wav")
    trim = ("silence", "1", "0.02", "1%", "reverse")
    sh("sox", path, out, *trim, *trim)
    return out


def words_of(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower().replace("ё", "е")))


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def options(cache_dir: Path) -> TranscribeOptions:
    """Loads the bundled model once for the whole session."""
    opts = TranscribeOptions()
    path = resolve_whisper_model(opts.model, cache_dir)
    load_whisper_model(path, "cpu", "int8")
    return opts


@pytest.fixture(scope="session")
def en_wav(media: Path) -> Path:
    return speak_en(EN_TEXT, media / "en.wav")


@pytest.fixture(scope="session")
def en_transcript(en_wav: Path, options: TranscribeOptions, cache_dir: Path) -> Transcript:
    return transcribe(en_wav, options, cache_dir)


@pytest.mark.model
def test_english_words_and_language(en_transcript: Transcript, en_wav: Path) -> None:
    assert en_transcript.language == "en"
    assert len(EN_WORDS & words_of(en_transcript.text)) >= 5, en_transcript.text
    assert en_transcript.duration == pytest.approx(duration(en_wav), abs=0.05)
    words = [w for s in en_transcript.segments for w in s.words]
    assert len(words) >= 8  # word timestamps are on by default
    assert all(0 <= w.start <= w.end <= en_transcript.duration + 0.5 for w in words)
    assert en_transcript.model == "base"


@pytest.mark.model
def test_russian_telegram_voice_note(media: Path, options: TranscribeOptions, cache_dir: Path):
    """A Russian .ogg/opus file (what Telegram voice messages are) is detected as ru."""
    wav = speak_ru(f"{RU_A} {RU_B}", media / "ru.wav")
    ogg = media / "голосовое сообщение.ogg"
    sh("ffmpeg", "-y", "-v", "error", "-i", wav, "-c:a", "libopus", "-b:a", "32k", ogg)
    seen: list[tuple[float, float]] = []
    transcript = transcribe(ogg, options, cache_dir, on_progress=lambda d, t: seen.append((d, t)))
    assert transcript.language == "ru"
    assert transcript.language_probability > 0.8
    assert len(RU_WORDS & words_of(transcript.text)) >= 6, transcript.text
    # Progress runs along the audio timeline and ends exactly at the total.
    assert seen[-1] == (transcript.duration, transcript.duration)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.model
def test_segment_starts_where_phrase_was_spoken(
    media: Path, options: TranscribeOptions, cache_dir: Path
) -> None:
    a = trimmed(speak_ru(RU_A, media / "a.wav"))
    b = trimmed(speak_ru(RU_B, media / "b.wav"))
    silence = media / "silence.wav"
    sh("sox", "-n", "-r", "16000", "-c", "1", "-b", "16", silence, "trim", "0", "3")
    joined = media / "a-gap-b.flac"
    sh("sox", a, silence, b, joined)
    b_onset = duration(a) + 3.0

    transcript = transcribe(joined, options, cache_dir)
    first = transcript.segments[0]
    assert first.start < 0.7
    b_segments = [s for s in transcript.segments if "библиотеке" in words_of(s.text)]
    assert b_segments, transcript.text
    assert b_segments[0].start == pytest.approx(b_onset, abs=0.7)
    assert "библиотеке" not in words_of(first.text) or first.start > b_onset - 0.7


@pytest.mark.model
def test_video_file_transcribes(
    media: Path, en_wav: Path, options: TranscribeOptions, cache_dir: Path
) -> None:
    video = media / "lecture.mkv"
    sh(
        "ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=64x64:r=5",
        "-i", en_wav, "-shortest", "-c:v", "libx264", "-c:a", "libvorbis", video,
    )  # fmt: skip
    transcript = transcribe(video, options, cache_dir)
    assert transcript.language == "en"
    assert len(EN_WORDS & words_of(transcript.text)) >= 5, transcript.text


def test_no_audio_stream_names_the_file(tmp_path: Path) -> None:
    video = tmp_path / "silent film.mp4"
    sh("ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", video)
    with pytest.raises(AudioError, match=r"^silent film\.mp4: no audio stream$"):
        decode_audio(video)


@pytest.mark.parametrize(
    "name, data",
    [
        ("lecture.mp3", bytes(range(256)) * 200),
        ("лекция.m4a", b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 100),
        ("notes.wav", "это не звук\n".encode() * 50),
    ],
)
def test_corrupt_file_names_the_file(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(AudioError, match=rf"^{re.escape(name)}: corrupt or unsupported audio"):
        decode_audio(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(AudioError, match=r"^empty\.mp3: empty file$"):
        decode_audio(tmp_path / "empty.mp3")
    with pytest.raises(AudioError, match=r"^gone\.mp3: no such file$"):
        decode_audio(tmp_path / "gone.mp3")


def test_missing_ffmpeg_is_a_clear_error(
    tmp_path: Path, en_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no ffmpeg on it
    with pytest.raises(AudioError, match=r"^en\.wav: ffmpeg is not installed"):
        decode_audio(en_wav)


def test_decoded_audio_is_16k_mono_float(en_wav: Path) -> None:
    audio = decode_audio(en_wav)
    assert audio.dtype.name == "float32" and audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(duration(en_wav), abs=0.01)
    assert 0.05 < float(abs(audio).max()) <= 1.0


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "00:00"
    assert format_timestamp(59.9) == "00:59"
    assert format_timestamp(725.4) == "12:05"
    assert format_timestamp(3725) == "1:02:05"
    assert format_timestamp(36000) == "10:00:00"


def test_srt_exact_format() -> None:
    word = Word(0.0, 0.4, " Привет", 0.9)
    transcript = Transcript(
        language="ru",
        language_probability=0.99,
        duration=3700.0,
        segments=(
            Segment(0.0, 2.5, "Привет, мир.", (word,)),
            Segment(3.0, 3.0, "", ()),  # an empty segment produces no cue
            Segment(3661.5, 3663.0015, "Второй час.", ()),
        ),
        model="base",
    )
    assert to_srt(transcript) == (
        "1\n00:00:00,000 --> 00:00:02,500\nПривет, мир.\n"
        "\n"
        "2\n01:01:01,500 --> 01:01:03,002\nВторой час.\n"
    )


@pytest.mark.model
def test_srt_of_real_transcript(en_transcript: Transcript) -> None:
    cues = to_srt(en_transcript).strip().split("\n\n")
    assert len(cues) == len(en_transcript.segments)
    for number, cue in enumerate(cues, start=1):
        index, span, text = cue.split("\n", 2)
        assert index == str(number)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", span)
        assert text.strip()


@pytest.mark.model
def test_model_assembled_once_and_reused(options: TranscribeOptions, cache_dir: Path) -> None:
    target = cache_dir / PACKAGED_DIR_NAME
    before = (target / "model.bin").stat()
    again = resolve_whisper_model("base", cache_dir)
    assert again == str(target)
    after = (target / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert before.st_size > 140_000_000
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".")]  # no staging left
    path = str(target)
    assert load_whisper_model(path, "cpu", "int8") is load_whisper_model(path, "cpu", "int8")


def test_damaged_model_is_rebuilt(tmp_path: Path) -> None:
    target = Path(resolve_whisper_model("base", tmp_path))
    size = (target / "model.bin").stat().st_size
    with open(target / "model.bin", "r+b") as f:
        f.truncate(1000)  # an interrupted copy by hand, say
    assert Path(resolve_whisper_model("base", tmp_path)) == target
    assert (target / "model.bin").stat().st_size == size


def test_local_folder_and_hub_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "my-whisper"
    folder.mkdir()
    with pytest.raises(WhisperModelError, match=r"no model\.bin"):
        resolve_whisper_model(str(folder), tmp_path)
    (folder / "model.bin").write_bytes(b"x")
    assert resolve_whisper_model(str(folder), tmp_path) == str(folder)

    hub_id = "mem-tests/not-a-cached-model"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WhisperModelError, match=r"not in the local .*HF_HUB_OFFLINE=1"):
        resolve_whisper_model(hub_id, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert resolve_whisper_model(hub_id, tmp_path) == hub_id  # passed on as is

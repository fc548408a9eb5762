"""Audio and video -> timed transcript, via ffmpeg and faster-whisper.

ffmpeg decodes anything (and pulls the sound out of video) into 16 kHz mono float32, the
array faster-whisper takes directly; the model runs with its VAD filter so long silences cost
nothing. The result is a plain `Transcript`; chunking and storage happen elsewhere.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mem.ingest.transcripts import format_timestamp  # re-exported: audio's public API
from mem.ingest.whisper_model import (
    DEFAULT_MODEL,
    WhisperModelError,
    load_whisper_model,
    resolve_compute_type,
    resolve_device,
    resolve_whisper_model,
)

AUDIO_EXTENSIONS = frozenset({".mp3", ".wav", ".m4a", ".ogg", ".opus", ".flac", ".webm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".mov"})
SAMPLE_RATE = 16_000  # what Whisper was trained on

__all__ = [
    "AUDIO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "AudioError",
    "Segment",
    "TranscribeOptions",
    "Transcript",
    "WhisperModelError",
    "Word",
    "decode_audio",
    "format_timestamp",
    "is_media_file",
    "to_srt",
    "transcribe",
]

ProgressCallback = Callable[[float, float], None]


class AudioError(Exception):
    """A file could not be turned into audio; the message is "<file>: <reason>"."""


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str  # as Whisper spells it: a leading space marks a word boundary
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    language: str
    language_probability: float | None  # None for a transcript stored before mem kept it
    duration: float
    segments: tuple[Segment, ...]
    model: str

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)


@dataclass(frozen=True)
class TranscribeOptions:
    model: str = DEFAULT_MODEL
    language: str | None = None  # None: detect from the first 30 s
    vad_filter: bool = True
    word_timestamps: bool = True
    beam_size: int = 5
    device: str = "auto"
    compute_type: str = "auto"  # int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: CTranslate2's default


def is_media_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in AUDIO_EXTENSIONS or suffix in VIDEO_EXTENSIONS


def transcribe(
    path: Path,
    options: TranscribeOptions,
    cache_dir: Path,
    on_progress: ProgressCallback | None = None,
) -> Transcript:
    """Transcribe one audio or video file.

    Raises AudioError for an unreadable file and WhisperModelError when the model is missing.
    `on_progress(seconds_done, total_seconds)` follows the audio timeline, ending at total.
    """
    audio = decode_audio(path)
    model = _model_for(options, cache_dir)
    raw_segments, info = model.transcribe(
        audio,
        language=options.language or None,
        beam_size=options.beam_size,
        vad_filter=options.vad_filter,
        word_timestamps=options.word_timestamps,
    )
    total = len(audio) / SAMPLE_RATE
    segments = []
    for raw in raw_segments:  # a generator: decoding happens while we iterate
        segments.append(_segment(raw))
        if on_progress is not None:
            on_progress(min(raw.end, total), total)
    if on_progress is not None:
        on_progress(total, total)
    return Transcript(
        language=info.language,
        language_probability=round(float(info.language_probability), 4),
        duration=total,
        segments=tuple(segments),
        model=options.model,
    )


def _model_for(options: TranscribeOptions, cache_dir: Path) -> Any:
    device = resolve_device(options.device)
    compute_type = resolve_compute_type(options.compute_type, device)
    model_path = resolve_whisper_model(options.model, cache_dir)
    return load_whisper_model(model_path, device, compute_type, options.cpu_threads)


def _segment(raw: Any) -> Segment:
    words = tuple(
        Word(float(w.start), float(w.end), w.word, round(float(w.probability), 4))
        for w in (raw.words or ())
    )
    return Segment(float(raw.start), float(raw.end), raw.text.strip(), words)


def decode_audio(path: Path) -> Any:
    """The file's first audio stream as a 16 kHz mono float32 numpy array."""
    import numpy as np

    path = Path(path)
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        raise AudioError(f"{path.name}: ffmpeg is not installed (apt-get install ffmpeg)")
    if not path.is_file():
        raise AudioError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: empty file")
    source = f"file:{path.resolve()}"  # so a ':' or leading '-' in a name is not a protocol/option
    result = _run([
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", source,
        "-map", "0:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-",
    ])  # fmt: skip
    if result.returncode != 0:
        # Probe only on failure: it costs a second process start on every good file.
        _require_audio_stream(ffprobe, path)
        raise AudioError(f"{path.name}: corrupt or unsupported audio{_detail(result.stderr)}")
    audio = np.frombuffer(result.stdout, dtype=np.float32)
    if audio.size == 0:
        raise AudioError(f"{path.name}: the audio stream is empty")
    return audio


def _require_audio_stream(ffprobe: str, path: Path) -> None:
    """Raise the AudioError that says why ffmpeg found nothing to decode, if ffprobe can tell."""
    source = f"file:{path.resolve()}"
    result = _run(
        [ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", source]
    )
    if result.returncode != 0:
        raise AudioError(f"{path.name}: corrupt or unsupported audio{_detail(result.stderr)}")
    streams = json.loads(result.stdout or b"{}").get("streams", [])
    if not any(s.get("codec_type") == "audio" for s in streams):
        raise AudioError(f"{path.name}: no audio stream")


def _run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, check=False)


def _detail(stderr: bytes) -> str:
    """ffmpeg's last complaint, minus the file path it repeats."""
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1].rsplit(": ", 1)[-1].strip()
    return f" ({last[:120]})"


def to_srt(transcript: Transcript) -> str:
    """SubRip subtitles: numbered cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm", blank line between."""
    cues = []
    for number, segment in enumerate((s for s in transcript.segments if s.text), start=1):
        span = f"{_srt_time(segment.start)} --> {_srt_time(segment.end)}"
        cues.append(f"{number}\n{span}\n{segment.text}\n")
    return "\n".join(cues)


def _srt_time(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"

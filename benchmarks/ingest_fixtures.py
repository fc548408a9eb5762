"""Material shaped like what users bring, built from ../shared/data (nothing here is made up).

`russian_documents`: one long Obsidian note written by nexus-ai-chat-importer (Russian
questions and answers: XQuAD ru questions as the user's turns, their paragraphs as the
assistant's), plus four Russian Markdown files (the other XQuAD ru articles, a heading per
article). Like the five real documents the issue measured (970 KB, one a 900 KB chat note),
the note and two of the Markdown files are mojibake'd: UTF-8 misread as Windows-1251 and
saved again, which doubles their size on disk. `scale` shrinks everything proportionally.

`chat_export(copies)`: the real ChatGPT export, optionally repeated with fresh conversation
ids (the texts repeat, so the embedding cache encodes each text once; what it measures is
the rest of the pipeline and its memory).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from common import SHARED


def _articles() -> list[dict]:
    data = json.loads((SHARED / "xquad" / "xquad.ru.json").read_text(encoding="utf-8"))
    return data["data"]


def _mojibake(text: str) -> str:
    import ftfy.bad_codecs  # noqa: F401  (registers "sloppy-windows-1251")

    return text.encode("utf-8").decode("sloppy-windows-1251")


def _nexus_note(articles: list[dict]) -> str:
    lines = [
        "---",
        "nexus: nexus-ai-chat-importer",
        "provider: chatgpt",
        "aliases: Вопросы по статьям",
        "conversation_id: 6790c1a2-0b5e-8007-9a3c-000000000001",
        "create_time: 2024-03-01T12:00:05.000Z",
        "update_time: 2024-03-02T12:05:00.000Z",
        "---",
        "# Title: Вопросы по статьям",
        "",
        "Created: 01.03.2024 at 15:00:05",
        "",
    ]
    n = 0
    for article in articles:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"].lstrip("\ufeff")
            for qa in paragraph["qas"][:1]:
                n += 1
                minute, second = divmod(n, 60)
                stamp = f"01.03.2024 at {15 + minute // 60:02d}:{minute % 60:02d}:{second:02d}"
                lines.append(f">[!nexus_user] **User** - {stamp}")
                lines.append(f"> {qa['question']}")
                lines.append(f"<!-- UID: user-{n} -->")
                lines.append(f">[!nexus_agent] **Assistant** - {stamp}")
                lines += [f"> {line}" if line else ">" for line in context.split("\n")]
                for other in paragraph["qas"][1:]:
                    # The rest of the paragraph's questions, answered briefly, as a chat goes on.
                    lines.append(">")
                    lines.append(f"> {other['question']} — {other['answers'][0]['text']}.")
                lines.append(f"<!-- UID: agent-{n} -->")
                lines.append("")
    return "\n".join(lines) + "\n"


def _markdown(article: dict) -> str:
    parts = [f"# {article['title'].replace('_', ' ')}", ""]
    for n, paragraph in enumerate(article["paragraphs"], start=1):
        parts += [f"## Часть {n}", "", paragraph["context"].lstrip("\ufeff"), ""]
    return "\n".join(parts)


def russian_documents(folder: Path, scale: float = 1.0) -> list[Path]:
    """The five documents (scaled); returns their paths. The note takes 44 of 48 articles."""
    articles = _articles()
    note_articles = articles[: max(1, round(44 * scale))]
    markdown_articles = articles[44:48]
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "Чат — вопросы по статьям.md"]
    paths[0].write_text(_mojibake(_nexus_note(note_articles)), encoding="utf-8")
    for n, article in enumerate(markdown_articles):
        text = _markdown(article)
        if scale < 1.0:
            text = text[: max(2000, int(len(text) * scale))]
        path = folder / f"конспект-{n + 1}.md"
        path.write_text(_mojibake(text) if n < 2 else text, encoding="utf-8")
        paths.append(path)
    return paths


def chat_export(path: Path, copies: int = 1, conversations: int | None = None) -> Path:
    """The real export (its first `conversations`), `copies` times with fresh ids."""
    data = json.loads((SHARED / "chatgpt-export" / "conversations.json").read_text())
    data = data[:conversations] if conversations else data
    out = []
    for copy in range(copies):
        for conversation in data:
            if copy:
                conversation = dict(conversation)
                conversation["id"] = conversation["conversation_id"] = str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"{conversation.get('id')}-{copy}")
                )
            out.append(conversation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return path

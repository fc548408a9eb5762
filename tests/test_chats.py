"""Chat-log parsers: real ChatGPT export slice, and fixtures written here for the rest."""

from __future__ import annotations

import copy
import json
import time
import zipfile
from pathlib import Path

import pytest

from mem.ingest.chats import (
    ChatParseError,
    Conversation,
    detect_chat_format,
    parse_chat_file,
)

FIXTURES = Path(__file__).parent / "fixtures" / "chats"
SLICE = FIXTURES / "chatgpt_slice.json"
REAL_EXPORT = Path(__file__).parents[1] / ".." / "shared" / "data" / "chatgpt-export"

# Facts about the committed slice, read off its mapping trees.
OSCAR, WIKI, STATS, LOGO = (
    "65e5bb56-a41c-407c-8e90-6261edbed4fa",
    "c21a4db5-68eb-471a-b590-bb6ef7b81b42",
    "3af5baaa-e3c9-4fec-928d-0007faaa9430",
    "e96087ed-b714-4a54-a06a-e425db1680bd",
)
STATS_CURRENT = "bbc9138b-4b47-4f0b-b984-e1b302626e32"
STATS_REGENERATED = "4ac5aced-e531-4b5c-9ede-82b5a31fc729"  # on the current_node path
STATS_ABANDONED = "eb5d508e-72fd-420a-b3d6-d119e26c6350"  # the earlier answer, a branch
STATS_SYSTEM = "9020089b-3b70-447a-b01d-93a229aee7f7"


def by_id(conversations: list[Conversation]) -> dict[str, Conversation]:
    return {c.conversation_id: c for c in conversations}


def all_turn_ids(conversation: Conversation) -> list[str]:
    ids = [t.turn_id for t in conversation.turns]
    return ids + [t.turn_id for branch in conversation.branches for t in branch]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- ChatGPT: the real slice -------------------------------------------------------------


def test_chatgpt_slice_counts_and_main_branch() -> None:
    result = parse_chat_file(SLICE)
    assert result.errors == []
    convs = by_id(result.conversations)
    assert [c.conversation_id for c in result.conversations] == [OSCAR, WIKI, STATS, LOGO]
    assert {k: len(c.turns) for k, c in convs.items()} == {OSCAR: 7, WIKI: 4, STATS: 14, LOGO: 14}
    stats = convs[STATS]
    assert stats.source_format == "chatgpt"
    assert stats.title == "Intro to Multivariate Stats."
    assert stats.created == "2023-05-01T11:49:56Z"
    # The main branch ends at current_node and goes through the regenerated answer.
    assert stats.turns[-1].turn_id == STATS_CURRENT
    assert stats.turns[3].turn_id == STATS_REGENERATED
    assert [t.index for t in stats.turns] == list(range(14))
    assert [t.role for t in stats.turns[:4]] == ["user", "assistant", "user", "assistant"]


def test_chatgpt_branch_kept_once_and_never_duplicated() -> None:
    convs = by_id(parse_chat_file(SLICE).conversations)
    stats = convs[STATS]
    assert len(stats.branches) == 1
    (abandoned,) = stats.branches[0]
    assert abandoned.turn_id == STATS_ABANDONED
    assert abandoned.index == 3  # forked where the regenerated answer sits
    assert abandoned.text.startswith("1) Which of the following is NOT one of the unique")
    for conversation in convs.values():
        ids = all_turn_ids(conversation)
        assert len(ids) == len(set(ids))
    # Oscar's regenerated attempt holds only browsing commands and tool output: no branch.
    assert convs[OSCAR].branches == ()
    assert len(convs[LOGO].branches) == 1


def test_chatgpt_skips_system_tools_and_finds_known_sentence() -> None:
    convs = by_id(parse_chat_file(SLICE).conversations)
    assert STATS_SYSTEM not in all_turn_ids(convs[STATS])
    for conversation in convs.values():
        assert {t.role for t in conversation.turns} <= {"user", "assistant"}
    oscar = convs[OSCAR]
    texts = [t.text for t in oscar.turns]
    assert not any("open_url(" in t or "URL: https://" in t for t in texts)
    assert oscar.turns[5].role == "user"
    assert "Kun je dit advies in het Nederlands vertalen?" in oscar.turns[5].text
    assert oscar.turns[5].timestamp == "2023-06-07T13:28:39Z"
    assert oscar.turns[6].speaker == "ChatGPT"
    assert oscar.turns[6].text.startswith("Zeker, hier is het advies vertaald")


def test_chatgpt_hidden_node_skipped(tmp_path: Path) -> None:
    data = json.loads(SLICE.read_text(encoding="utf-8"))
    stats = next(c for c in data if c["id"] == STATS)
    stats["mapping"][STATS_REGENERATED]["message"]["metadata"][
        "is_visually_hidden_from_conversation"
    ] = True
    path = write(tmp_path / "conversations.json", json.dumps(data))
    parsed = by_id(parse_chat_file(path).conversations)[STATS]
    assert STATS_REGENERATED not in all_turn_ids(parsed)
    assert [t.index for t in parsed.turns] == list(range(13))
    assert parsed.turns[-1].turn_id == STATS_CURRENT  # the path still runs through it


def test_chatgpt_multimodal_code_and_bad_item(tmp_path: Path) -> None:
    def node(nid: str, parent: str | None, children: list[str], message: dict | None) -> dict:
        return {"id": nid, "parent": parent, "children": children, "message": message}

    def msg(role: str, content: dict, recipient: str = "all") -> dict:
        return {
            "author": {"role": role},
            "create_time": 1709294405.5,
            "content": content,
            "recipient": recipient,
            "metadata": {},
        }

    picture = {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}
    mapping = {
        "r": node("r", None, ["a"], None),
        "a": node(
            "a",
            "r",
            ["b"],
            msg("user", {"content_type": "multimodal_text", "parts": [picture, "Что на фото?"]}),
        ),
        "b": node(
            "b",
            "a",
            ["c"],
            msg(
                "assistant",
                {"content_type": "code", "language": "py", "text": "print('привет')"},
                "python",
            ),
        ),
        "c": node("c", "b", [], msg("tool", {"content_type": "execution_output", "text": "ok"})),
    }
    good = {
        "id": "conv-1",
        "title": "Фото",
        "create_time": 1709294405,
        "mapping": mapping,
        "current_node": "c",
    }
    path = write(tmp_path / "conversations.json", json.dumps([good, {"title": "broken"}]))
    result = parse_chat_file(path)
    assert result.errors == ["conversations.json: item 1 has no 'mapping'"]
    (conv,) = result.conversations
    assert [t.text for t in conv.turns] == ["[image]\nЧто на фото?", "print('привет')"]
    assert conv.turns[0].timestamp == "2024-03-01T12:00:05Z"


@pytest.mark.skipif(not REAL_EXPORT.exists(), reason="shared/data is not in a user's clone")
def test_chatgpt_whole_real_export() -> None:
    start = time.perf_counter()
    result = parse_chat_file(REAL_EXPORT / "conversations.json")
    elapsed = time.perf_counter() - start
    assert result.errors == []
    assert len(result.conversations) == 192
    assert sum(len(c.turns) for c in result.conversations) == 1298
    assert sum(len(b) for c in result.conversations for b in c.branches) == 2
    assert len({c.conversation_id for c in result.conversations}) == 192
    assert elapsed < 10


# --- ChatGPT: damaged files and zips ---------------------------------------------------


def test_truncated_chatgpt_keeps_complete_conversations(tmp_path: Path) -> None:
    data = SLICE.read_bytes()
    third_starts = data.index(b'{"title": "Intro to Multivariate Stats."')
    cut = third_starts + 5000  # in the middle of the third conversation
    path = tmp_path / "conversations.json"
    path.write_bytes(data[:cut])
    result = parse_chat_file(path)
    assert [c.conversation_id for c in result.conversations] == [OSCAR, WIKI]
    assert result.errors == [
        f"conversations.json: truncated JSON at byte {cut}; "
        "kept the 2 complete conversations before it"
    ]
    path.write_bytes(data[:3000])  # inside the first conversation: nothing to keep
    with pytest.raises(ChatParseError, match=r"conversations\.json: truncated JSON at byte"):
        parse_chat_file(path)


def test_chatgpt_zip_export(tmp_path: Path) -> None:
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("chat.html", "<html></html>")
        zf.writestr("conversations.json", SLICE.read_bytes())
    assert detect_chat_format(archive) == "chatgpt"
    zipped = parse_chat_file(archive)
    plain = parse_chat_file(SLICE)
    assert zipped.conversations == plain.conversations
    with pytest.raises(ChatParseError, match="refused"):
        parse_chat_file(archive, max_bytes=10_000)


def test_zip_bomb_refused(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    bomb = b'[{"title": "x", "create_time": 1, "mapping": {' + b" " * 30_000_000
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("conversations.json", bomb)
    assert archive.stat().st_size < 100_000
    with pytest.raises(ChatParseError, match=r"export\.zip/conversations\.json: refused.*ratio"):
        parse_chat_file(archive)


# --- stable ids ---------------------------------------------------------------------------


def test_ids_stable_across_parses_and_a_grown_export(tmp_path: Path) -> None:
    full = json.loads(SLICE.read_text(encoding="utf-8"))
    # An older export: one conversation fewer, and the stats chat three turns shorter.
    old = copy.deepcopy([c for c in full if c["id"] != WIKI])
    stats = next(c for c in old if c["id"] == STATS)
    main = parse_chat_file(SLICE).conversations[2].turns
    stats["current_node"] = main[10].turn_id
    for later in main[11:]:
        del stats["mapping"][later.turn_id]
    stats["mapping"][main[10].turn_id]["children"] = []
    old_path = write(tmp_path / "old.json", json.dumps(old))
    new_path = write(tmp_path / "new.json", json.dumps(full))

    first, again = parse_chat_file(new_path), parse_chat_file(new_path)
    assert first.conversations == again.conversations
    old_convs = by_id(parse_chat_file(old_path).conversations)
    new_convs = by_id(first.conversations)
    assert len(old_convs[STATS].turns) == 11
    assert set(old_convs) < set(new_convs)
    for cid, conv in old_convs.items():
        newer = new_convs[cid]
        assert conv.turns == newer.turns[: len(conv.turns)]  # same ids, same text, same index
        assert set(all_turn_ids(conv)) <= set(all_turn_ids(newer))


def test_whatsapp_ids_stable_when_chat_grows(tmp_path: Path) -> None:
    lines = [
        "31.12.23, 23:59 - Алиса: С наступающим!",
        "31.12.23, 23:59 - Алиса: ок",
        "31.12.23, 23:59 - Алиса: ок",
        "01.01.24, 00:01 - Борис: И тебя!",
    ]
    old = write(tmp_path / "WhatsApp Chat with Алиса.txt", "\n".join(lines[:3]) + "\n")
    new = write(tmp_path / "later export.txt", "\n".join(lines) + "\n")
    (old_conv,) = parse_chat_file(old).conversations
    (new_conv,) = parse_chat_file(new).conversations
    assert old_conv.conversation_id == new_conv.conversation_id
    assert [t.turn_id for t in new_conv.turns[:3]] == [t.turn_id for t in old_conv.turns]
    assert len(set(t.turn_id for t in new_conv.turns)) == 4  # the repeated "ок" stays distinct


# --- detection ----------------------------------------------------------------------------


def test_detection_by_content_not_name(tmp_path: Path) -> None:
    renamed = tmp_path / "data.json"
    renamed.write_bytes(SLICE.read_bytes())
    assert detect_chat_format(renamed) == "chatgpt"
    assert detect_chat_format(write(tmp_path / "note.md", "# Shopping\n\n- milk\n")) is None
    assert detect_chat_format(write(tmp_path / "a.md", NEXUS_NOTE)) == "nexus"
    wa = write(tmp_path / "notes.txt", "[31.12.2023, 23:59:59] Алиса: Привет\n")
    assert detect_chat_format(wa) == "whatsapp"
    tg = write(tmp_path / "export.json", json.dumps(TELEGRAM_CHAT, indent=1))
    assert detect_chat_format(tg) == "telegram"
    assert detect_chat_format(write(tmp_path / "tg.json", json.dumps(TELEGRAM_CHAT))) == "telegram"
    lines = write(tmp_path / "log.txt", '{"role": "user", "content": "hi"}\n')
    assert detect_chat_format(lines) == "jsonl"
    assert detect_chat_format(write(tmp_path / "cfg.json", '{"debug": true}')) is None
    assert detect_chat_format(write(tmp_path / "plain.txt", "31 декабря был праздник.\n")) is None


# --- nexus notes --------------------------------------------------------------------------

NEXUS_NOTE = """---
nexus: nexus-ai-chat-importer
plugin_version: "1.3.0"
provider: chatgpt
aliases: Индексы в PostgreSQL
conversation_id: 6790c1a2-0b5e-8007-9a3c-1d2e3f4a5b6c
create_time: 2024-03-01T12:00:05.000Z
update_time: 2024-03-01T12:05:00.000Z
---
# Title: Индексы в PostgreSQL

Created: 01.03.2024 at 15:00:05
Last Updated: 01.03.2024 at 15:05:00
Chat URL: https://chatgpt.com/c/6790c1a2-0b5e-8007-9a3c-1d2e3f4a5b6c


>[!nexus_user] **User** - 01.03.2024 at 15:00:05
> Когда нужен составной индекс?
>
>> цитата из книги
<!-- UID: aaa2-user-1 -->
>[!nexus_agent] **Assistant · gpt-4o** - 01.03.2024 at 15:00:41
> Составной индекс помогает, когда запрос фильтрует по нескольким столбцам.
>>[!nexus_attachment] **plan.png** (image/png) - 12 KB
>>
>> ![[attachments/plan.png]]
<!-- UID: 5f0e-agent-1 -->

---
"""


def test_nexus_note_russian(tmp_path: Path) -> None:
    result = parse_chat_file(write(tmp_path / "Индексы.md", NEXUS_NOTE))
    (conv,) = result.conversations
    assert conv.conversation_id == "6790c1a2-0b5e-8007-9a3c-1d2e3f4a5b6c"
    assert conv.title == "Индексы в PostgreSQL"
    assert conv.source_format == "nexus"
    assert conv.created == "2024-03-01T12:00:05Z"
    user, agent = conv.turns
    assert (user.role, user.speaker, user.turn_id) == ("user", "User", "aaa2-user-1")
    assert user.text == "Когда нужен составной индекс?\n\n> цитата из книги"
    # Printed in the vault's zone (UTC+3 here); the Created line vs create_time gives it.
    assert user.timestamp == "2024-03-01T12:00:05Z"
    assert agent.timestamp == "2024-03-01T12:00:41Z"
    assert (agent.role, agent.speaker, agent.turn_id) == (
        "assistant",
        "Assistant · gpt-4o",
        "5f0e-agent-1",
    )
    assert agent.text == (
        "Составной индекс помогает, когда запрос фильтрует по нескольким столбцам.\n"
        "[attachment: plan.png]"
    )


def test_nexus_mojibake_note_repaired(tmp_path: Path) -> None:
    import ftfy.bad_codecs  # noqa: F401  (registers "sloppy-windows-1251")

    # The whole note was misread as Windows-1251 (as browsers and editors decode it: the
    # unassigned byte 0x98 passes through) and saved again as UTF-8.
    broken = NEXUS_NOTE.encode("utf-8").decode("sloppy-windows-1251")
    assert "РЎРѕСЃС‚Р°РІРЅРѕР№" in broken
    (conv,) = parse_chat_file(write(tmp_path / "note.md", broken)).conversations
    assert conv.title == "Индексы в PostgreSQL"
    assert conv.turns[0].text.startswith("Когда нужен составной индекс?")
    assert conv.turns[1].text.startswith("Составной индекс помогает")
    assert conv.turns[1].speaker == "Assistant · gpt-4o"


def test_nexus_us_dates_without_zone_info(tmp_path: Path) -> None:
    note = (
        "---\nnexus: nexus-ai-chat-importer\nprovider: claude\n---\n"
        ">[!nexus_user] **User** - 03/01/2024 at 3:00:05 PM\n> first\n<!-- UID: u1 -->\n"
        ">[!nexus_agent] **Assistant** - 03/13/2024 at 9:01:00 AM\n> second\n"
        "<!-- UID: a1 -->\n"
    )
    (conv,) = parse_chat_file(write(tmp_path / "Chat.md", note)).conversations
    # Month-first (13 cannot be a month); no Created/create_time pair, so no zone: no "Z".
    assert [t.timestamp for t in conv.turns] == ["2024-03-01T15:00:05", "2024-03-13T09:01:00"]
    assert conv.conversation_id  # hashed from the file, stable below
    (again,) = parse_chat_file(tmp_path / "Chat.md").conversations
    assert again.conversation_id == conv.conversation_id


def test_nexus_note_without_uids_and_byline_inside_callout(tmp_path: Path) -> None:
    note = (
        "---\nnexus: nexus-ai-chat-importer\nprovider: gemini\nconversation_id: g-1\n"
        "title: Симпсоны\ncreate_time: 2025-12-28T00:33:59.000Z\n---\n\n# Симпсоны\n\n"
        "Created: 28/12/2025 at 01:33:59\n\n"
        ">[!nexus_user] **User** - 28.12.2025 01:33:59\n> Нарисуй нас\n\n"
        "> [!nexus_agent]\n> **Assistant** - 28.12.2025 01:34:05\n>\n> Готово!\n"
        "> ```python\n> def f():\n>     return 'ок'\n> ```\n"
    )
    path = write(tmp_path / "Симпсоны.md", note)
    (conv,) = parse_chat_file(path).conversations
    assert conv.title == "Симпсоны"
    assert [(t.speaker, t.text, t.timestamp) for t in conv.turns] == [
        ("User", "Нарисуй нас", "2025-12-28T00:33:59Z"),
        # Code indentation survives the mojibake repair.
        ("Assistant", "Готово!\n```python\ndef f():\n    return 'ок'\n```", "2025-12-28T00:34:05Z"),
    ]
    (again,) = parse_chat_file(path).conversations
    assert [t.turn_id for t in again.turns] == [t.turn_id for t in conv.turns]
    assert len({t.turn_id for t in conv.turns}) == 2


# --- Telegram -----------------------------------------------------------------------------

TELEGRAM_CHAT = {
    "name": "Борис",
    "type": "personal_chat",
    "id": 4242,
    "messages": [
        {
            "id": 1,
            "type": "service",
            "date": "2024-03-01T15:00:00",
            "date_unixtime": "1709294400",
            "actor": "Борис",
            "actor_id": "user4242",
            "action": "phone_call",
            "text": "",
        },
        {
            "id": 2,
            "type": "message",
            "date": "2024-03-01T15:00:05",
            "date_unixtime": "1709294405",
            "from": "Борис",
            "from_id": "user4242",
            "text": [
                "Смотри ",
                {"type": "bold", "text": "статью"},
                ": ",
                {"type": "link", "text": "https://example.org/a"},
            ],
            "text_entities": [],
        },
        {
            "id": 3,
            "type": "message",
            "date": "2024-03-01T15:01:00",
            "date_unixtime": "1709294460",
            "from": "Я",
            "from_id": "user777",
            "text": "Спасибо, прочитаю",
        },
        {
            "id": 4,
            "type": "message",
            "date": "2024-03-01T15:02:00",
            "date_unixtime": "1709294520",
            "from": "Борис",
            "from_id": "user4242",
            "photo": "photos/p.jpg",
            "text": "вот схема",
        },
    ],
}


def test_telegram_single_chat(tmp_path: Path) -> None:
    path = write(tmp_path / "result.json", json.dumps(TELEGRAM_CHAT, ensure_ascii=False))
    (conv,) = parse_chat_file(path).conversations
    assert (conv.conversation_id, conv.title, conv.source_format) == ("4242", "Борис", "telegram")
    assert [t.turn_id for t in conv.turns] == ["2", "3", "4"]  # service message skipped
    assert conv.turns[0].text == "Смотри статью: https://example.org/a"
    assert conv.turns[0].timestamp == "2024-03-01T12:00:05Z"
    # A personal chat's id is the other party's: every other sender is the owner.
    assert [t.role for t in conv.turns] == ["other", "user", "other"]
    assert conv.turns[2].text == "[media] вот схема"
    assert [t.index for t in conv.turns] == [0, 1, 2]


def test_telegram_full_account_export(tmp_path: Path) -> None:
    group = {
        "name": "Книжный клуб",
        "type": "private_group",
        "id": 99,
        "messages": [
            {
                "id": 10,
                "type": "message",
                "date_unixtime": "1709294405",
                "from": "Я",
                "from_id": "user777",
                "text": [{"type": "italic", "text": "Читаем Толстого"}],
            },
            {
                "id": 11,
                "type": "message",
                "date_unixtime": "1709294500",
                "from": "Анна",
                "from_id": "user5",
                "text": "Согласна",
            },
        ],
    }
    export = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 777, "first_name": "Я"},
        "contacts": {"list": []},
        "chats": {"about": "...", "list": [TELEGRAM_CHAT, group, {"id": 5, "messages": "bad"}]},
        "left_chats": {
            "list": [
                {
                    "name": "Старый",
                    "type": "public_channel",
                    "id": 3,
                    "messages": [
                        {
                            "id": 1,
                            "type": "message",
                            "date_unixtime": "1609459200",
                            "from": "Старый",
                            "from_id": "channel3",
                            "text": "Архив",
                        }
                    ],
                }
            ]
        },
    }
    path = write(tmp_path / "result.json", json.dumps(export, ensure_ascii=False, indent=1))
    assert detect_chat_format(path) == "telegram"
    result = parse_chat_file(path)
    assert result.errors == ["result.json: chat 2 (None) has no 'messages'"]
    convs = by_id(result.conversations)
    assert set(convs) == {"4242", "99", "3"}
    assert [t.role for t in convs["99"].turns] == ["user", "other"]
    assert convs["99"].turns[0].text == "Читаем Толстого"
    assert [t.role for t in convs["4242"].turns] == ["other", "user", "other"]
    assert convs["3"].turns[0].timestamp == "2021-01-01T00:00:00Z"


# --- WhatsApp ----------------------------------------------------------------------------


def test_whatsapp_android_us_multiline(tmp_path: Path) -> None:
    text = (
        "12/31/23, 11:58 PM - Messages and calls are end-to-end encrypted. No one outside "
        "of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n"
        "12/31/23, 11:59\u202fPM - Alice: Happy new year!\n"
        "Second line of the same message\n"
        "\n"
        "and a third after a blank line\n"
        "1/1/24, 12:00 AM - Bob: <Media omitted>\n"
        '1/1/24, 12:01 AM - Alice changed the subject from "a" to "b: c"\n'
        "1/1/24, 12:02 AM - Bob: This message was deleted\n"
        "1/1/24, 12:03 AM - Bob: Thanks!\n"
    )
    (conv,) = parse_chat_file(write(tmp_path / "WhatsApp Chat with Alice.txt", text)).conversations
    assert conv.title == "Alice"
    assert [(t.speaker, t.text) for t in conv.turns] == [
        (
            "Alice",
            "Happy new year!\nSecond line of the same message\n\nand a third after a blank line",
        ),
        ("Bob", "[media]"),
        ("Bob", "Thanks!"),
    ]
    assert [t.timestamp for t in conv.turns] == [
        "2023-12-31T23:59:00",
        "2024-01-01T00:00:00",
        "2024-01-01T00:03:00",
    ]
    assert {t.role for t in conv.turns} == {"other"}


def test_whatsapp_russian_day_first_resolved_across_file(tmp_path: Path) -> None:
    text = (
        "03.01.24, 10:00 - Алиса: Привет! Как дела?\n"
        "03.01.24, 10:01 - Борис: <Медиа отсутствуют>\n"
        "03.01.24, 10:02 - Борис: Нормально,\nработаю над проектом\n"
        "13.01.24, 09:00 - Алиса: Прошло десять дней\n"
    )
    (conv,) = parse_chat_file(write(tmp_path / "chat.txt", text)).conversations
    # "13" can only be a day, so every date in the file is day-first: 3 January, not 1 March.
    assert conv.turns[0].timestamp == "2024-01-03T10:00:00"
    assert conv.turns[1].text == "[media]"
    assert conv.turns[2].text == "Нормально,\nработаю над проектом"
    assert conv.turns[3].timestamp == "2024-01-13T09:00:00"


def test_whatsapp_ios_format(tmp_path: Path) -> None:
    text = (
        "[31.12.2023, 23:58:01] Семья: \u200eСообщения и звонки защищены сквозным шифрованием.\n"
        "[31.12.2023, 23:59:59] Мама: С Новым годом!\n"
        "Целую\n"
        "[01.01.2024, 00:00:10] \u202a+7 912 345-67-89\u202c: "
        "\u200e<attached: 00000012-PHOTO.jpg>\n"
        "[01.01.2024, 00:00:30] Папа: \u200eimage omitted\n"
    )
    archive = tmp_path / "WhatsApp Chat - Семья.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_chat.txt", text)
    assert detect_chat_format(archive) == "whatsapp"
    (conv,) = parse_chat_file(archive).conversations
    assert conv.title == "Семья"
    assert [(t.speaker, t.text) for t in conv.turns] == [
        ("Мама", "С Новым годом!\nЦелую"),
        ("+7 912 345-67-89", "[media]"),
        ("Папа", "[media]"),
    ]
    assert conv.turns[0].timestamp == "2023-12-31T23:59:59"


# --- JSONL --------------------------------------------------------------------------------


def test_jsonl_one_message_per_line(tmp_path: Path) -> None:
    lines = [
        {"role": "system", "content": "Ты полезный помощник."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Что такое RAG?"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
        {"role": "assistant", "content": "Поиск плюс генерация."},
        {"role": "tool", "content": "{}"},
    ]
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n"
    result = parse_chat_file(write(tmp_path / "chat.jsonl", body))
    assert result.errors == [
        "chat.jsonl: line 5: invalid JSON (Expecting property name enclosed in double quotes)"
    ]
    (conv,) = result.conversations
    assert [(t.role, t.text) for t in conv.turns] == [
        ("system", "Ты полезный помощник."),
        ("user", "Что такое RAG?\n[image]"),
        ("assistant", "Поиск плюс генерация."),
    ]
    assert conv.title == "Что такое RAG?"


def test_jsonl_one_conversation_per_line(tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Привет"},
                {"role": "assistant", "content": "Здравствуйте!"},
            ]
        },
        {
            "id": "c-2",
            "title": "Второй",
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
            ],
        },
        {
            "messages": [
                {"role": "user", "content": "Привет"},
                {"role": "assistant", "content": "Здравствуйте!"},
            ]
        },
    ]
    path = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows))
    result = parse_chat_file(path)
    assert result.errors == []
    first, second, third = result.conversations
    assert second.conversation_id == "c-2" and second.title == "Второй"
    assert first.conversation_id != third.conversation_id  # identical lines stay distinct
    assert third.conversation_id == first.conversation_id + "-1"
    assert [t.text for t in first.turns] == ["Привет", "Здравствуйте!"]
    assert parse_chat_file(path).conversations == result.conversations


def test_not_a_chat_raises(tmp_path: Path) -> None:
    with pytest.raises(ChatParseError, match=r"note\.md: not a recognised chat export"):
        parse_chat_file(write(tmp_path / "note.md", "# Заметка\n\nПросто текст.\n"))

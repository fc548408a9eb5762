"""Text repair on the states Russian text really arrives in."""

from __future__ import annotations

import pytest

from mem.ingest.textrepair import decode_bytes, dehyphenate, fix_mojibake, repair_text

TEXT = (
    "Привет, мир! Это проверка кодировки: ёжик съел щавель. Сеть учится на данных, "
    "а ответ — в разделе «Итоги»."
)


def _sloppy_cp1252(data: bytes) -> str:
    """How Windows tools misread UTF-8: cp1252, with its five undefined bytes as C1 controls."""
    out = []
    for byte in data:
        try:
            out.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(byte))
    return "".join(out)


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1251", "koi8-r", "cp866"]
)
def test_legacy_cyrillic_code_pages_are_recognised(encoding: str) -> None:
    plain = "Привет, мир! Это проверка кодировки: ёжик съел щавель. Сеть учится на данных."
    text, found = decode_bytes(plain.encode(encoding))
    assert text == plain
    assert found.replace("-sig", "").replace("-le", "") in encoding


def test_mac_cyrillic_is_recognised() -> None:
    # Mac Cyrillic shares its lowercase letters with cp1251; its capitals decide.
    text = "Москва. Санкт-Петербург. Ярославль и Владимир — города России."
    assert decode_bytes(text.encode("mac-cyrillic")) == (text, "mac-cyrillic")


def test_western_text_is_not_taken_for_cyrillic() -> None:
    text = "Le café est très bon, à bientôt. Größe und Übung."
    assert decode_bytes(text.encode("cp1252")) == (text, "cp1252")


def test_binary_data_is_refused() -> None:
    with pytest.raises(ValueError, match="binary"):
        decode_bytes(b"%PDF-1.4\x00\x01\x02\x03" * 50)
    with pytest.raises(ValueError, match="binary"):
        decode_bytes(bytes(range(0, 32)) * 40)


def test_utf8_cut_mid_character_keeps_the_rest() -> None:
    data = TEXT.encode()[:-3] + "ж".encode()[:1]
    text, encoding = decode_bytes(data)
    assert encoding == "utf-8" and TEXT.startswith(text) and len(text) > 50


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(TEXT.encode().decode("mac_roman"), id="mac-roman"),
        pytest.param(_sloppy_cp1252(TEXT.encode()), id="cp1252"),
        pytest.param(TEXT.encode().decode("latin-1"), id="latin-1"),
        pytest.param(TEXT.encode().decode("cp1251", errors="replace"), id="utf8-as-cp1251"),
        pytest.param(
            TEXT.encode().decode("mac_roman").encode().decode("mac_roman"), id="double-mac-roman"
        ),
        pytest.param(_sloppy_cp1252(_sloppy_cp1252(TEXT.encode()).encode()), id="double-cp1252"),
        pytest.param(_sloppy_cp1252(TEXT.encode().decode("mac_roman").encode()), id="mac-then-cp"),
    ],
)
def test_mojibake_comes_back_as_cyrillic(broken: str) -> None:
    assert broken != TEXT
    assert repair_text(broken) == TEXT


def test_mojibake_inside_a_clean_line_is_repaired_in_place() -> None:
    line = "Заметка: " + "Сон важен для памяти.".encode().decode("mac_roman") + " Конец."
    assert repair_text(line) == "Заметка: Сон важен для памяти. Конец."


@pytest.mark.parametrize("lost", ["replace", "ignore", "question-mark"])
def test_bytes_cp1252_lost_are_guessed_back(lost: str) -> None:
    # "с" and "я" are D1 81 / D1 8F: cp1252 cannot show 0x81 or 0x8F, so they got lost.
    text = "Сеть учится сама, и это ясно."
    errors = "ignore" if lost == "ignore" else "replace"
    broken = text.encode().decode("cp1252", errors=errors)
    if lost == "question-mark":
        broken = broken.replace("\ufffd", "?")
    repaired = repair_text(broken)
    assert "Ñ" not in repaired and "\ufffd" not in repaired
    assert repaired.startswith("Сеть учится сама, и")


@pytest.mark.parametrize(
    "clean",
    [
        "Le café – très — bien, Þór and Größe.",
        "Tom’s “quote” — ok; x—y; Σ≈∆ ≤ 3",
        "Сёмга и Рёрих — не мусор, а слова.",
        "Привет — мир «в кавычках» № 5, 20 °C.",
        "ÐÑ as Icelandic capitals, alone.",
    ],
)
def test_clean_text_is_left_alone(clean: str) -> None:
    assert fix_mojibake(clean) == clean


def test_dehyphenation_joins_broken_words_only() -> None:
    text = "об уча- стии и уча-\nстии; до- и послевоенный; красно-синий; Москва- Париж; well- known"
    assert dehyphenate(text) == (
        "об участии и участии; до- и послевоенный; красно-синий; Москва- Париж; wellknown"
    )


def test_normalisation_nfkc_and_invisible_characters() -> None:
    assert repair_text("ﬁle\u00adname\u200b  x\r\ny") == "filename x\ny"

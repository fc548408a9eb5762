"""Document readers on real files of each kind, written in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem.ingest.documents import DocumentError, parse_document


def test_markdown_headings_become_paths(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("# Курс\n\nВведение.\n\n## Тема 1\n\nТекст темы.\n\n### Деталь\n\nМелочь.\n")
    doc = parse_document(path)
    assert doc.title == "Курс" and doc.kind == "markdown"
    assert [(b.text, b.headings) for b in doc.blocks] == [
        ("Введение.", ("Курс",)),
        ("Текст темы.", ("Курс", "Тема 1")),
        ("Мелочь.", ("Курс", "Тема 1", "Деталь")),
    ]


def test_html_in_cp1251(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    html = "<html><body><h1>Заголовок</h1><p>Абзац про память и сон.</p></body></html>"
    path.write_bytes(html.encode("cp1251"))
    doc = parse_document(path)
    assert doc.blocks[0].text == "Абзац про память и сон."
    assert doc.blocks[0].headings == ("Заголовок",)


def test_docx_headings(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Отчёт", level=1)
    document.add_paragraph("Первый абзац отчёта.")
    document.add_heading("Итоги", level=2)
    document.add_paragraph("Итоговый абзац.")
    path = tmp_path / "report.docx"
    document.save(path)
    doc = parse_document(path)
    assert [(b.text, b.headings) for b in doc.blocks] == [
        ("Первый абзац отчёта.", ("Отчёт",)),
        ("Итоговый абзац.", ("Отчёт", "Итоги")),
    ]


def _make_pdf(path: Path, pages: list[list[str]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42  # embedded TrueType with a Unicode map
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        for lines in pages:
            figure = plt.figure(figsize=(8.27, 11.69))
            for i, line in enumerate(lines):
                figure.text(0.1, 0.9 - i * 0.05, line, fontsize=12)
            pdf.savefig(figure)
            plt.close(figure)


def test_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "book.pdf"
    _make_pdf(
        path,
        [
            ["Сигмоида сжимает вход в интервал от нуля до единицы."],
            ["ReLU keeps positive values unchanged."],
        ],
    )
    doc = parse_document(path)
    pages = {b.text: b.page for b in doc.blocks}
    assert pages["Сигмоида сжимает вход в интервал от нуля до единицы."] == 1
    assert pages["ReLU keeps positive values unchanged."] == 2


def test_pdf_without_text_is_an_error_not_silence(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    _make_pdf(path, [[]])  # a page with no text layer, like a scan
    with pytest.raises(DocumentError, match="no text could be extracted"):
        parse_document(path)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("fake.pdf", b"GIF89a....", "not a PDF"),
        ("fake.docx", b"plain text", "not a DOCX"),
        ("junk.md", bytes(range(256)) * 8, "binary"),
        ("image.png", b"\x89PNG", "unsupported file type"),
    ],
)
def test_bad_files_get_one_clear_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=reason):
        parse_document(path)


def test_plain_text_in_legacy_encodings(tmp_path: Path) -> None:
    text = "Привет, мир! Это проверка кодировки: ёжик съел щавель."
    for encoding in ("utf-8", "utf-16", "cp1251", "koi8-r"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        assert parse_document(path).blocks[0].text == text, encoding

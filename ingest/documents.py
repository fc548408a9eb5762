"""Documents -> blocks of text with their place (page, heading path), via unstructured.

Plain text and Markdown are decoded by us first (any encoding, mojibake repaired), then
handed to unstructured as text; PDF, DOCX and HTML go to unstructured as files.
"""

from __future__ import annotations

import io
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mem.ingest.textrepair import decode_bytes, repair_text

DOCUMENT_EXTENSIONS = frozenset(
    {".md", ".markdown", ".txt", ".text", ".html", ".htm", ".docx", ".pdf"}
)

# unstructured phones home at import and shows an advert unless told not to.
for _name, _value in (
    ("DO_NOT_TRACK", "true"),
    ("SCARF_NO_ANALYTICS", "true"),
    ("UNSTRUCTURED_DISABLE_NOTICE", "1"),
):
    os.environ.setdefault(_name, _value)


# PDF libraries log repairs of damaged files ("EOF marker not found") as warnings, which
# land on stderr between mem's own one-line errors; a file that fails is reported by us.
for _logger in ("pypdf", "pdfminer"):
    logging.getLogger(_logger).setLevel(logging.ERROR)


class DocumentError(Exception):
    """A document could not be read; the message says why, in one line."""


@dataclass(frozen=True)
class Block:
    """A paragraph-sized piece of a document and where it sits."""

    text: str
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    kind: str
    blocks: tuple[Block, ...]


def parse_document(path: Path, data: bytes | None = None) -> ParsedDocument:
    """Read a document into blocks. Raises DocumentError with a one-line reason."""
    suffix = path.suffix.lower()
    if data is None:
        data = path.read_bytes()
    if not data.strip():
        raise DocumentError("empty file")
    if suffix in (".txt", ".text"):
        blocks = _plain_text_blocks(_decode(data))
        kind = "text"
    elif suffix in (".md", ".markdown"):
        blocks = _elements_to_blocks(_partition("md", text=_decode(data)))
        kind = "markdown"
    elif suffix in (".html", ".htm"):
        blocks = _elements_to_blocks(_partition("html", text=_decode(data)))
        kind = "html"
    elif suffix == ".docx":
        _check_zip(data, "DOCX")
        blocks = _elements_to_blocks(_partition("docx", filename=str(path)))
        kind = "docx"
    elif suffix == ".pdf":
        if not data.startswith(b"%PDF"):
            raise DocumentError("not a PDF (no %PDF header)")
        blocks = _elements_to_blocks(_partition("pdf", filename=str(path)))
        kind = "pdf"
        if not blocks:
            # unstructured returns nothing, silently, for scanned PDFs and when its PDF
            # dependencies are missing; say so instead of storing an empty document.
            raise DocumentError("no text could be extracted (scanned PDF without OCR?)")
    else:
        raise DocumentError(f"unsupported file type {suffix or '(none)'}")
    if not blocks:
        raise DocumentError("no text found")
    return ParsedDocument(title=_title(path, blocks), kind=kind, blocks=tuple(blocks))


def _decode(data: bytes) -> str:
    try:
        text, _encoding = decode_bytes(data)
    except ValueError as exc:
        raise DocumentError(str(exc)) from exc
    return text


# A DOCX is a zip; python-docx unpacks its XML whole, so a crafted one is a zip bomb.
_MAX_UNPACKED = 512 * 2**20
_MAX_RATIO = 100  # XML compresses 5-20x; bombs compress hundreds to millions of times


def _check_zip(data: bytes, what: str) -> None:
    if not data.startswith(b"PK"):
        raise DocumentError(f"not a {what} file (not a zip container)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise DocumentError(f"damaged {what} file ({exc})") from None
    total = sum(i.file_size for i in infos)
    if total > _MAX_UNPACKED:
        raise DocumentError(f"refused: {what} unpacks to {total / 2**20:.0f} MB (zip bomb?)")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 2**20 and ratio > _MAX_RATIO:
            raise DocumentError(
                f"refused: {info.filename} inside expands {ratio:.0f}:1 (zip bomb?)"
            )


def _partition(kind: str, **kwargs):
    try:
        if kind == "md":
            from unstructured.partition.md import partition_md as partition
        elif kind == "html":
            from unstructured.partition.html import partition_html as partition
        elif kind == "docx":
            from unstructured.partition.docx import partition_docx as partition
        else:
            from unstructured.partition.pdf import partition_pdf

            def partition(**kw):
                # "fast" reads the text layer with pdfminer: no OCR model, nothing to download.
                return partition_pdf(strategy="fast", languages=["rus", "eng"], **kw)

        return partition(**kwargs)
    except DocumentError:
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DocumentError(f"cannot parse: {reason[:200]}") from exc


def _elements_to_blocks(elements) -> list[Block]:
    """Turn unstructured elements into blocks; real headings (with a depth) build the path."""
    blocks: list[Block] = []
    path: list[str] = []
    for element in elements:
        text = repair_text(element.text or "").strip()
        if not text:
            continue
        depth = getattr(element.metadata, "category_depth", None)
        page = getattr(element.metadata, "page_number", None)
        if element.category == "Title" and depth is not None:
            path = [*path[:depth], text]
            continue
        blocks.append(Block(text=text, page=page, headings=tuple(path)))
    return blocks


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _plain_text_blocks(text: str) -> list[Block]:
    text = repair_text(text)
    return [Block(text=p.strip()) for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def _title(path: Path, blocks: list[Block]) -> str:
    for block in blocks:
        if block.headings:
            return block.headings[0]
    return path.name

"""Interim text repair (replaced by the full module): decoding, mojibake, normalisation."""

from __future__ import annotations

import re
import unicodedata


def decode_bytes(data: bytes) -> tuple[str, str]:
    for bom, enc in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(enc), enc
    if b"\x00" in data[:4096]:
        raise ValueError("binary data, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    controls = sum(b < 9 or 13 < b < 32 for b in data[:4096])
    if controls > len(data[:4096]) * 0.05:
        raise ValueError("binary data, not text")
    return data.decode("cp1251"), "cp1251"


def fix_mojibake(text: str) -> str:
    import ftfy

    out = []
    for line in text.split("\n"):
        fixed = ftfy.fix_encoding(line)
        if fixed == line:
            try:
                candidate = line.encode("mac_roman").decode("utf-8")
                fixed = candidate
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
        out.append(fixed)
    return "\n".join(out)


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[ \t]+", " ", text)


def repair_text(text: str) -> str:
    return normalize_text(fix_mojibake(text))

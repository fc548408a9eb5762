"""Text repair: decode bytes of unknown encoding, undo mojibake, normalise.

Russian text reaches us in every state: UTF-8, UTF-16, the legacy single-byte code pages
(cp1251, KOI8-R, cp866, Mac Cyrillic), and "mojibake" — UTF-8 that some tool decoded as
cp1252 or Mac Roman and saved again, sometimes twice, sometimes losing the bytes that
cp1252 leaves undefined. Everything here is plain-Python heuristics that can be explained:
a candidate decoding wins when its letters look like real words (Russian words are mostly
lowercase, never mix scripts, and use the basic Cyrillic alphabet).
"""

from __future__ import annotations

import re
import unicodedata

# Single-byte code pages tried, in order of how common they are for Russian files; cp1252
# stands in for Western European text that is not UTF-8.
LEGACY_ENCODINGS = ("cp1251", "koi8-r", "mac-cyrillic", "cp866", "cp1252")

_RUSSIAN_LOWER = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")
_RUSSIAN_UPPER = set("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ")
# Typographic characters that real (non-mojibake) text uses and that cost nothing.
_TYPOGRAPHY = set("«»—–‘’“”„…№°±×·•€\u00a0\u2009\u202f§©®™")
_WORD = re.compile(r"[^\W\d_]+")


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a text file's bytes; return (text, encoding). Raise ValueError for binary data."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding), encoding
    head = data[:8192]
    utf16 = _bom_less_utf16(head)
    if utf16:
        try:
            return data.decode(utf16), utf16
        except UnicodeDecodeError:
            pass
    if b"\x00" in head:
        raise ValueError("binary data, not text (NUL bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        # A UTF-8 file cut mid-character still is UTF-8: keep all but the broken tail.
        if error.start >= len(data) - 3 and error.reason == "unexpected end of data":
            return data[: error.start].decode("utf-8"), "utf-8"
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    if controls > len(head) * 0.02:
        raise ValueError("binary data, not text (control bytes)")
    return best_legacy_decoding(data)


def _bom_less_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL in every other byte of ASCII (and of Cyrillic's 0x04)."""
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) + odd.count(4) > 0.6 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) + even.count(4) > 0.6 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def best_legacy_decoding(data: bytes) -> tuple[str, str]:
    """Try each legacy code page and keep the decoding whose words look most like words."""
    sample = data[:65536]
    best: tuple[float, str] | None = None
    for encoding in LEGACY_ENCODINGS:
        try:
            score = plausibility(sample.decode(encoding))
        except UnicodeDecodeError:
            continue
        if best is None or score > best[0]:
            best = (score, encoding)
    encoding = best[1] if best else "latin-1"
    return data.decode(encoding, errors="replace"), encoding


def plausibility(text: str) -> float:
    """How much the non-ASCII part of `text` looks like real words (higher is better).

    ASCII scores nothing (every candidate decodes it alike). Lowercase Russian letters score
    most, capitals less (wrong Cyrillic code pages swap case: KOI8-R read as cp1251 comes out
    mostly in capitals), case flips inside a word, letters outside the Russian alphabet, words
    mixing Latin and Cyrillic, and stray symbols all cost.
    """
    score = 0.0
    for match in _WORD.finditer(text):
        word = match.group()
        if word.isascii():
            continue
        cyrillic = sum("\u0400" <= ch <= "\u04ff" for ch in word)
        latin = sum(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in word)
        if cyrillic and latin:
            score -= 3 * len(word)
            continue
        if not cyrillic:
            score += 0.3 * sum(not ch.isascii() for ch in word)
            continue
        for position, ch in enumerate(word):
            if ch in _RUSSIAN_LOWER:
                score += 1.0
            elif ch in _RUSSIAN_UPPER:
                lower_before = position > 0 and word[position - 1] in _RUSSIAN_LOWER
                score += -1.0 if lower_before else 0.3
            else:
                score -= 2.0
    for ch in text:
        if not ch.isascii() and not ch.isalpha() and not ch.isspace() and ch not in _TYPOGRAPHY:
            score -= 1.0 if unicodedata.category(ch)[0] in "PSN" else 3.0
    return score


def _misread_pairs(encoding: str) -> str:
    """A regex alternative matching a UTF-8 lead byte then a continuation byte, as `encoding`
    shows them: the mark of UTF-8 that was decoded with that code page."""

    def chars(low: int, high: int) -> str:
        shown = bytes(range(low, high + 1)).decode(encoding, errors="ignore")
        if encoding == "cp1252":  # bytes cp1252 leaves undefined surface as C1 controls
            shown += "".join(chr(b) for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D))
        return re.escape(shown)

    return f"[{chars(0xC2, 0xF4)}][{chars(0x80, 0xBF)}]"


# Lines without such a pair are left alone (and cost nothing).
_SUSPECT = re.compile("|".join(_misread_pairs(e) for e in ("cp1252", "cp1251", "mac_roman")))
_CP1252_CONTINUATION = set(bytes(range(0x80, 0xC0)).decode("cp1252", errors="ignore")) | {
    chr(b) for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_VOWELS = set("аеёиоуыэюяАЕЁИОУЫЭЮЯaeiouy")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 misread as cp1252/latin-1/cp1251/Mac Roman (also twice), line by line."""
    if not _SUSPECT.search(text):
        return text
    return "\n".join(
        _fix_line(line) if _SUSPECT.search(line) else line for line in text.split("\n")
    )


def _fix_line(line: str) -> str:
    import ftfy  # only needed for lines that look broken

    for _ in range(3):  # double (and triple) mojibake comes off one layer per pass
        # Each layer may be cp1252/latin-1 (ftfy undoes it) or Mac Roman (ftfy does not), and
        # cp1252 may have lost bytes; try each reading and keep the one that reads best.
        candidates = []
        for start in {line, _restore_lost_bytes(line)}:
            fixed = ftfy.fix_encoding(start)
            candidates += [fixed, _fix_mac_roman(start), _fix_mac_roman(fixed)]
        best = max(candidates, key=plausibility)
        if best == line or plausibility(best) <= plausibility(line):
            break
        line = best
    return line


def _restore_lost_bytes(line: str) -> str:
    """Put back the Cyrillic letter whose second UTF-8 byte cp1252 could not show.

    cp1252 leaves 0x81 0x8D 0x8F 0x90 0x9D undefined; tools that wrote such mojibake dropped
    those bytes or put "?" / U+FFFD there, leaving a lead byte Ð or Ñ with nothing after it.
    After Ð the lost letter is one of А Н Э Ё, after Ñ one of с я э: take the likeliest one
    given what follows (a guess, but a readable word beats a broken one).
    """
    # Read as cp1251, the only undefined continuation byte is 0x98 ("И" is D0 98): no guess.
    line = line.replace("Р\ufffd", "Р\x98")
    if "Ð" not in line and "Ñ" not in line:
        return line
    out: list[str] = []
    index = 0
    while index < len(line):
        ch = line[index]
        after = line[index + 1 : index + 2]
        if ch in "ÐÑ" and (after in ("\ufffd", "?") or after not in _CP1252_CONTINUATION):
            rest = line[index + 2 :] if after in ("\ufffd", "?") else line[index + 1 :]
            following = _first_letter(rest)
            word_ends = not following.isalpha()
            if ch == "Ð":
                letter = "Н" if following in _VOWELS else "А"
            else:
                letter = "я" if word_ends else "с"
            out.append(letter.encode("utf-8").decode("latin-1"))
            index += 2 if after in ("\ufffd", "?") else 1
            continue
        out.append(ch)
        index += 1
    return "".join(out)


def _first_letter(rest: str) -> str:
    """The character `rest` starts with, decoding a misread two-byte UTF-8 letter."""
    if rest[:1] in ("Ð", "Ñ") and len(rest) > 1:
        try:
            return rest[:2].encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return rest[:1]
    return rest[:1]


_MAC_ROMAN_RUN = re.compile(r"(?:[–—][^\s\x00-\x1f]|[^\x00-\x7f\s–—]|[!-~](?=[–—]))+")


def _fix_mac_roman(line: str) -> str:
    """ftfy does not undo Mac Roman; re-encode runs that look like it and keep what improves."""

    def repair(match: re.Match[str]) -> str:
        run = match.group()
        try:
            candidate = run.encode("mac_roman").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return run
        return candidate if plausibility(candidate) > plausibility(run) else run

    try:
        whole = line.encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return _MAC_ROMAN_RUN.sub(repair, line)
    return whole if plausibility(whole) > plausibility(line) else line


# A word broken across a line ("уча-\nстии", or "уча- стии" once lines were joined) is put
# back together; a suspended hyphen before a conjunction ("до- и послевоенный") stays.
_BROKEN_WORD = re.compile(r"(?<=[^\W\d_]{2})-[ \t]*\n?[ \t]*(?=([^\W\d_]+))")
_CONJUNCTIONS = {"и", "или", "а", "либо", "ни", "and", "or", "nor"}


def dehyphenate(text: str) -> str:
    """Join words a line break split with a hyphen, keeping real hyphenated compounds."""

    def join(match: re.Match[str]) -> str:
        gap = match.group()
        after = match.group(1)
        if gap == "-" or not after[:1].islower() or after in _CONJUNCTIONS:
            return gap  # "красно-синий", "Москва- Париж", "до- и после"
        before = text[max(0, match.start() - 1)]
        if before.isupper():
            return gap
        return ""

    return _BROKEN_WORD.sub(join, text)


def normalize_text(text: str) -> str:
    """NFKC, Unix newlines, no soft hyphens or zero-width junk, runs of spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub("[\u00ad\u200b\u200c\u200d\ufeff]", "", text)
    return re.sub(r"[ \t]+", " ", text)


def repair_text(text: str) -> str:
    """Everything a document's text goes through: mojibake, normalisation, broken words."""
    return dehyphenate(normalize_text(fix_mojibake(text)))

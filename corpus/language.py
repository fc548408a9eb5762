"""Cheap script-based language guess: enough to know when a retriever is blind."""

from __future__ import annotations

import re

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")

# Everything detect_language can answer.
LANGUAGES = ("ru", "en", "other")


def detect_language(text: str) -> str:
    """Return "ru" for mostly Cyrillic text, "en" for mostly Latin, "other" otherwise.

    Script, not language, is what matters here: a lexical index cannot match an English
    query against Cyrillic text, whatever the exact languages are.
    """
    sample = text[:4000]
    cyrillic = len(_CYRILLIC.findall(sample))
    latin = len(_LATIN.findall(sample))
    if cyrillic == 0 and latin == 0:
        return "other"
    return "ru" if cyrillic >= latin else "en"

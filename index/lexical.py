"""Lexical index: SQLite FTS5 over Snowball-stemmed tokens (Russian and English), BM25-ranked.

FTS5 gives incremental inserts/deletes and BM25 in one small file; stemming is ours because
FTS5 ships only an English Porter stemmer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from mem.corpus.sqlite import connect
from mem.index.language import LANGUAGES

_TOKEN = re.compile(r"\w+", re.UNICODE)
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")

# Function words that only add noise to an OR query (Snowball stopword lists, abridged).
_STOPWORDS = frozenset(
    """
    a an and are as at be by for from has have he her his i in is it its of on or that the
    their they this to was were what when where which who whom why will with you your how
    did does do than then there these those been being into about also not no but can could
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только
    ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни
    быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где
    есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж
    тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее
    сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше
    тот через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой
    перед иногда лучше чуть том нельзя такой им более всегда конечно всю между это каком
    """.split()
)


@lru_cache(maxsize=2)
def _stemmer(language: str):
    import Stemmer  # PyStemmer; a C extension, cheap to import

    return Stemmer.Stemmer(language)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens with ё folded to е and stopwords removed."""
    words = _TOKEN.findall(text.lower().replace("ё", "е"))
    return [w for w in words if w not in _STOPWORDS]


def stem_tokens(tokens: Iterable[str]) -> list[str]:
    """Stem each token with the Snowball stemmer of its script."""
    russian, english = _stemmer("russian"), _stemmer("english")
    return [(russian if _CYRILLIC.search(token) else english).stemWord(token) for token in tokens]


def analyze(text: str) -> list[str]:
    return stem_tokens(tokenize(text))


class LexicalIndex:
    """BM25 over stemmed tokens, kept in its own SQLite file beside Chroma."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS lex USING fts5("
            "stems, chunk_id UNINDEXED, language UNINDEXED, "
            "tokenize = 'unicode61 remove_diacritics 0')"
        )
        # Which languages the memory holds, answerable without scanning the FTS table (search
        # asks on every query; an FTS5 column cannot be indexed).
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS chunk_language("
            "chunk_id TEXT PRIMARY KEY, language TEXT NOT NULL) WITHOUT ROWID"
        )
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS chunk_language_by_language ON chunk_language(language)"
        )
        if self._conn.execute("SELECT NOT EXISTS (SELECT 1 FROM chunk_language)").fetchone()[0]:
            # A home indexed before this table existed.
            self._conn.execute(
                "INSERT OR REPLACE INTO chunk_language SELECT chunk_id, language FROM lex"
            )
        self._conn.commit()

    def add(self, ids: Sequence[str], texts: Sequence[str], languages: Sequence[str]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT INTO lex(stems, chunk_id, language) VALUES (?, ?, ?)",
                [
                    (" ".join(analyze(t)), i, lang)
                    for i, t, lang in zip(ids, texts, languages, strict=True)
                ],
            )
            self._conn.executemany(
                "INSERT OR REPLACE INTO chunk_language VALUES (?, ?)",
                list(zip(ids, languages, strict=True)),
            )

    def delete(self, ids: Iterable[str]) -> None:
        with self._conn:
            rows = [(i,) for i in ids]
            self._conn.executemany("DELETE FROM lex WHERE chunk_id = ?", rows)
            self._conn.executemany("DELETE FROM chunk_language WHERE chunk_id = ?", rows)

    def ids(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT chunk_id FROM lex")}

    def count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM lex").fetchone()[0]

    def languages(self) -> list[str]:
        """The passage languages present (of those detect_language gives)."""
        return [
            language
            for language in LANGUAGES
            if self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM chunk_language WHERE language = ?)", (language,)
            ).fetchone()[0]
        ]

    def languages_of(self, ids: Sequence[str]) -> dict[str, str]:
        rows = self._conn.execute(
            f"SELECT chunk_id, language FROM chunk_language WHERE chunk_id IN "
            f"({','.join('?' * len(ids))})",
            list(ids),
        )
        return dict(rows.fetchall())

    def id_counts(self) -> dict[str, int]:
        """chunk id -> rows holding it (more than one is a duplicate)."""
        rows = self._conn.execute("SELECT chunk_id, count(*) FROM lex GROUP BY chunk_id")
        return dict(rows.fetchall())

    def search(self, query: str, limit: int) -> list[tuple[str, float, str]]:
        """Return (chunk_id, bm25, passage language) best first; higher bm25 is better."""
        stems = sorted(set(analyze(query)))
        if not stems:
            return []
        match = " OR ".join('"' + s.replace('"', '""') + '"' for s in stems)
        rows = self._conn.execute(
            "SELECT chunk_id, -bm25(lex) AS score, language FROM lex WHERE lex MATCH ? "
            "ORDER BY bm25(lex) LIMIT ?",
            (match, limit),
        ).fetchall()
        return [(chunk_id, float(score), language) for chunk_id, score, language in rows]

    def close(self) -> None:
        self._conn.close()

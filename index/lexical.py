"""Lexical index: SQLite FTS5 over Snowball-stemmed tokens (Russian and English), BM25-ranked.

FTS5 gives incremental inserts/deletes and BM25 in one small file; stemming is ours because
FTS5 ships only an English Porter stemmer.

FTS5 ranks every row that holds any query term, so a query with a frequent word costs time in
proportion to the corpus. `search(max_rows=...)` bounds that: the rarest terms pick the
candidates, and the frequent ones only add their BM25 share to those candidates, computed here
from document counts this module keeps beside the FTS table (`lex_terms`, `lex_totals`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from mem.corpus.language import LANGUAGES
from mem.corpus.sqlite import connect

_TOKEN = re.compile(r"\w+", re.UNICODE)
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
# The tokens FTS5's unicode61 tokenizer makes of the stems column (letters and digits; "_" and
# other punctuation separate), so the kept counts and lengths are the ones its bm25() sees.
_FTS_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# FTS5's bm25() constants (k1, b), so a share computed here adds up with its scores.
_K1, _B = 1.2, 0.75
# Candidates the rare terms pick per result asked for, before the frequent terms re-score them.
_POOL = 4
# Ids per statement (below SQLite's bound on parameters).
_BATCH = 500

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
        # How many rows hold each token, and the row and token totals: what bm25() weighs a
        # term by, readable in one lookup (fts5vocab counts a term's rows by reading them all).
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS lex_terms(term TEXT PRIMARY KEY, docs INTEGER NOT NULL) "
            "WITHOUT ROWID"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS lex_totals(id INTEGER PRIMARY KEY CHECK (id = 0), "
            "docs INTEGER NOT NULL, tokens INTEGER NOT NULL)"
        )
        self._conn.commit()
        if self._conn.execute("SELECT NOT EXISTS (SELECT 1 FROM lex_totals)").fetchone()[0]:
            self.rebuild_counts()

    @contextmanager
    def _vocabulary(self) -> Iterator[None]:
        """FTS5's own count of each term's rows, as temp.lex_vocab while the block runs."""
        self._conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lex_vocab USING fts5vocab(main, lex, row)"
        )
        try:
            yield
        finally:
            self._conn.execute("DROP TABLE temp.lex_vocab")

    def rebuild_counts(self) -> None:
        """Recount lex_terms and lex_totals from the FTS index itself (a home indexed before
        they existed; `mem doctor` when they disagree with it)."""
        with self._vocabulary(), self._conn:
            self._conn.execute("BEGIN IMMEDIATE")  # two processes opening an old home at once
            self._conn.execute("DELETE FROM lex_terms")
            self._conn.execute("INSERT INTO lex_terms SELECT term, doc FROM temp.lex_vocab")
            self._conn.execute(
                "INSERT OR REPLACE INTO lex_totals VALUES (0, (SELECT count(*) FROM lex), "
                "(SELECT coalesce(sum(cnt), 0) FROM temp.lex_vocab))"
            )

    def stale_counts(self) -> int:
        """How many kept counts (terms' row counts, and the totals) differ from what the FTS
        index itself holds; 0 when they agree. Reads the whole vocabulary: for `mem doctor`."""
        with self._vocabulary():
            terms = self._conn.execute(
                "SELECT (SELECT count(*) FROM temp.lex_vocab v LEFT JOIN lex_terms t "
                "ON t.term = v.term WHERE t.docs IS NOT v.doc) + (SELECT count(*) FROM lex_terms "
                "WHERE term NOT IN (SELECT term FROM temp.lex_vocab))"
            ).fetchone()[0]
            totals = self._conn.execute(
                "SELECT (SELECT count(*) FROM lex) IS NOT docs, "
                "(SELECT coalesce(sum(cnt), 0) FROM temp.lex_vocab) IS NOT tokens "
                "FROM lex_totals WHERE id = 0"
            ).fetchone()
        return terms + (sum(totals) if totals else 1)

    def _count(self, stems: Sequence[str], sign: int) -> None:
        """Add (sign 1) or take away (-1) these rows' stems in lex_terms and lex_totals."""
        docs: Counter[str] = Counter()
        tokens = 0
        for text in stems:
            found = _FTS_TOKEN.findall(text)
            tokens += len(found)
            docs.update(set(found))
        self._conn.executemany(
            "INSERT INTO lex_terms VALUES (?, ?) "
            "ON CONFLICT(term) DO UPDATE SET docs = docs + excluded.docs",
            [(term, sign * n) for term, n in docs.items()],
        )
        if sign < 0:
            self._conn.execute("DELETE FROM lex_terms WHERE docs <= 0")
        self._conn.execute(
            "INSERT INTO lex_totals VALUES (0, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "docs = docs + excluded.docs, tokens = tokens + excluded.tokens",
            (sign * len(stems), sign * tokens),
        )

    def add(self, ids: Sequence[str], texts: Sequence[str], languages: Sequence[str]) -> None:
        stems = [" ".join(analyze(t)) for t in texts]
        with self._conn:
            self._conn.executemany(
                "INSERT INTO lex(stems, chunk_id, language) VALUES (?, ?, ?)",
                list(zip(stems, ids, languages, strict=True)),
            )
            self._count(stems, 1)
            self._conn.executemany(
                "INSERT OR REPLACE INTO chunk_language VALUES (?, ?)",
                list(zip(ids, languages, strict=True)),
            )

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        with self._conn:
            for start in range(0, len(ids), _BATCH):
                batch = ids[start : start + _BATCH]
                # chunk_id is not indexed (FTS5 indexes only tokens): one scan finds the batch.
                marks = ",".join("?" * len(batch))
                rows = self._conn.execute(
                    f"SELECT rowid, stems FROM lex WHERE chunk_id IN ({marks})", batch
                ).fetchall()
                self._conn.executemany("DELETE FROM lex WHERE rowid = ?", [(r,) for r, _ in rows])
                self._count([text for _, text in rows], -1)
            self._conn.executemany(
                "DELETE FROM chunk_language WHERE chunk_id = ?", [(i,) for i in ids]
            )

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

    def search(self, query: str, limit: int, max_rows: int = 0) -> list[tuple[str, float, str]]:
        """Return (chunk_id, bm25, passage language) best first; higher bm25 is better.

        `max_rows` > 0 bounds the rows FTS5 ranks when the query's terms are in more rows than
        that: the rarest terms pick the candidates (any of them, while the rows holding them
        add up to at most max_rows; when even the rarest is in more, rows holding all of the
        rarest few), and every term scores them as the full query would. A row holding only
        left-out frequent terms is not found; such terms add little to BM25. 0: every row.
        """
        stems = sorted(set(analyze(query)))
        if not stems:
            return []
        docs = self._docs(stems) if max_rows > 0 and len(stems) > 1 else {}
        if not docs or sum(docs.values()) <= max_rows:
            rows = self._conn.execute(
                "SELECT chunk_id, -bm25(lex) AS score, language FROM lex WHERE lex MATCH ? "
                "ORDER BY bm25(lex) LIMIT ?",
                (_match(stems), limit),
            ).fetchall()
            return [(chunk_id, float(score), language) for chunk_id, score, language in rows]
        ranked = sorted(stems, key=lambda s: docs.get(s, 0))
        totals = self._conn.execute("SELECT docs, tokens FROM lex_totals WHERE id = 0").fetchone()
        n_rows, n_tokens = totals if totals and totals[0] > 0 else (1, 1)
        kept, rows = 0, 0
        while rows + docs.get(ranked[kept], 0) <= max_rows:
            rows += docs.get(ranked[kept], 0)
            kept += 1
        if kept:
            match = _match(ranked[:kept])
        else:
            # Rows holding all of the rarest terms, as many as make (if the terms were
            # independent) at most max_rows: FTS5 ranks only the rows that hold them all.
            expected = float(n_rows)
            while kept < len(ranked) and expected > max_rows:
                expected *= docs.get(ranked[kept], 0) / n_rows
                kept += 1
            match = " AND ".join(_match([stem]) for stem in ranked[:kept])
        found = self._conn.execute(
            "SELECT rowid, -bm25(lex) FROM lex WHERE lex MATCH ? ORDER BY bm25(lex) LIMIT ?",
            (match, limit * _POOL),
        ).fetchall()
        if not found and " AND " in match:  # no row holds them all: the rarest alone
            kept, match = 1, _match(ranked[:1])
            found = self._conn.execute(
                "SELECT rowid, -bm25(lex) FROM lex WHERE lex MATCH ? ORDER BY bm25(lex) LIMIT ?",
                (match, limit * _POOL),
            ).fetchall()
        return self._rescored(found, ranked[kept:], docs, n_rows, n_tokens, limit)

    def _docs(self, stems: Sequence[str]) -> dict[str, int]:
        """stem -> rows holding it; a stem FTS5 reads as several tokens counts as rare (0)."""
        plain = [s for s in stems if _FTS_TOKEN.fullmatch(s)]
        rows = self._conn.execute(
            f"SELECT term, docs FROM lex_terms WHERE term IN ({','.join('?' * len(plain))})",
            plain,
        )
        return dict(rows.fetchall())

    def _rescored(
        self,
        found: list[tuple[int, float]],
        left_out: Sequence[str],
        docs: dict[str, int],
        n_rows: int,
        n_tokens: int,
        limit: int,
    ) -> list[tuple[str, float, str]]:
        """The best `limit` of the found (rowid, bm25 of the terms FTS5 matched) with the
        left-out terms' share added, by bm25()'s own formula and counts."""
        if not found:
            return []
        average = max(n_tokens / n_rows, 1e-9)
        idf = {}
        for stem in left_out:
            n = docs.get(stem, 0)
            # bm25() floors a term held by more than half the rows at 1e-6, not below zero.
            idf[stem] = max(math.log((n_rows - n + 0.5) / (n + 0.5)), 0.0) or 1e-6
        # Read from FTS5's content table (its documented lex_content shadow: c0 = stems,
        # c1 = chunk_id, c2 = language): a lookup on lex itself costs ~0.1 ms a row, and
        # `rowid IN (...)` on lex scans the whole table.
        marks = ",".join("?" * len(found))
        texts = {
            rowid: (text, chunk_id, language)
            for rowid, text, chunk_id, language in self._conn.execute(
                f"SELECT id, c0, c1, c2 FROM lex_content WHERE id IN ({marks})",
                [rowid for rowid, _ in found],
            )
        }
        scored = []
        for rowid, score in found:
            text, chunk_id, language = texts[rowid]
            # The stems column is \w+ tokens joined by spaces, so this is _FTS_TOKEN's split.
            tokens = text.replace("_", " ").split()
            norm = _K1 * (1 - _B + _B * len(tokens) / average)
            for stem, weight in idf.items():
                if tf := tokens.count(stem):
                    score += weight * tf * (_K1 + 1) / (tf + norm)
            scored.append((chunk_id, float(score), language))
        scored.sort(key=lambda hit: -hit[1])
        return scored[:limit]

    def close(self) -> None:
        self._conn.close()


def _match(stems: Iterable[str]) -> str:
    """An FTS5 query for rows holding any of the stems, each quoted as a literal."""
    return " OR ".join('"' + s.replace('"', '""') + '"' for s in stems)

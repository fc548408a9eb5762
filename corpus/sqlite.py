"""Opening the memory's SQLite files (corpus, lexical index, embedding cache) the one way.

Every file is used in WAL mode so that readers (`mem ask`) never wait for a writer. Turning
WAL on needs a moment of exclusive access, and SQLite answers "database is locked" at once,
without waiting out the busy timeout, when another connection is opening the same new file
(an ingest and the nightly job on a fresh home). So the switch is retried until the busy
timeout has passed; once a file is in WAL mode the mode is persistent and the pragma is free.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path


def connect(
    path: Path, busy_timeout_s: float = 60.0, *, autocommit: bool = False
) -> sqlite3.Connection:
    """A connection to `path` in WAL mode, usable from any thread.

    `autocommit=True` leaves transactions to the caller (`BEGIN IMMEDIATE` ... `COMMIT`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout_s,
        check_same_thread=False,
        **({"isolation_level": None} if autocommit else {}),
    )
    try:
        _enable_wal(conn, busy_timeout_s)
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            mode = None
        if mode == "wal":
            return
        if time.monotonic() >= deadline:
            raise sqlite3.OperationalError(
                f"could not switch {_path_of(conn)} to WAL mode within {busy_timeout_s:g} s: "
                "another process holds it"
            )
        # Jittered so that several processes opening one new file do not retry in step.
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.2)


def _path_of(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else "the database"

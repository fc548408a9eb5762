"""Folder watch: files created, changed or deleted under some folders are ingested (or
forgotten) while the process runs.

Events come from the OS (inotify, through `watchfiles`), gathered until the folders have
been quiet for the debounce time, so an editor's save-as-temp-then-rename or a copied tree
is one ingest, not dozens. Each batch is one ordinary `mem ingest DIRS --prune`: unchanged
files cost a stat, changed ones replace their chunks, deleted ones are pruned, and it is
the same crash-safe ingest (corpus first, index second, reconciled on the next run) under
the same writer lock, so a `mem ingest` started by hand meanwhile just takes turns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from mem.memory.records import IngestReport

log = logging.getLogger(__name__)

Ingest = Callable[[Sequence[str]], IngestReport]


def check_folders(folders: Sequence[str]) -> list[str]:
    """The folders as absolute paths; ValueError naming the first that is not a folder."""
    resolved = []
    for folder in folders:
        path = Path(folder).expanduser().absolute()
        if not path.is_dir():
            raise ValueError(f"cannot watch {folder}: not a folder")
        resolved.append(str(path))
    return resolved


def describe(report: IngestReport) -> str:
    return (
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} "
        f"removed, {len(report.failed)} failed"
    )


def watch_folders(
    folders: Sequence[str],
    ingest: Ingest,
    stop: threading.Event,
    debounce_ms: int = 1000,
    on_report: Callable[[IngestReport], None] | None = None,
) -> None:
    """Ingest the folders once (what changed while nothing watched), then again after each
    quiet batch of changes, until `stop` is set. An ingest that fails is logged; the watch
    goes on."""
    from watchfiles import watch

    def run() -> None:
        try:
            report = ingest(folders)
        except Exception as exc:  # a busy memory, a missing model: next batch tries again
            log.error("mem watch: ingest failed: %s", exc)
            return
        for path, reason in report.failed:
            log.warning("mem watch: cannot ingest %s: %s", path, reason)
        if on_report is not None:
            on_report(report)

    # The first yield (changes, or none within rust_timeout) comes once the OS watch is set
    # up: the catch-up ingest runs then, so nothing written during it is missed.
    first = True
    for changes in watch(
        *folders,
        debounce=debounce_ms,
        stop_event=stop,
        raise_interrupt=False,
        rust_timeout=500,
        yield_on_timeout=True,
    ):
        if changes or first:
            first = False
            run()


def start_watch(
    folders: Sequence[str],
    ingest: Ingest,
    debounce_ms: int = 1000,
    on_report: Callable[[IngestReport], None] | None = None,
) -> tuple[threading.Thread, threading.Event]:
    """`watch_folders` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folders,
        args=(folders, ingest, stop, debounce_ms, on_report),
        name="mem-watch",
        daemon=True,
    )
    thread.start()
    return thread, stop

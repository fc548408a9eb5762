"""A writer lock in the memory home, so two ingests never interleave their writes."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockTimeout(Exception):
    """Another mem process kept the memory busy for longer than we would wait."""


def _holder(handle) -> str:
    handle.seek(0)
    return handle.read().strip() or "another mem process"


@contextmanager
def _holding(handle, what: str) -> Iterator[None]:
    """We hold the flock: write who we are (for whoever waits), clear and release it after."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"{what} (pid {os.getpid()})")
    handle.flush()
    try:
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def writer_lock(home: Path, what: str, timeout_s: float = 3600.0) -> Iterator[None]:
    """Hold <home>/.writer.lock; say once on stderr who we are waiting for."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".writer.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    print(f"mem: waiting for {_holder(handle)} to finish…", file=sys.stderr)
                    told = True
                if time.monotonic() > deadline:
                    raise LockTimeout(
                        f"memory at {home} stayed busy for {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.2)
        with _holding(handle, what):
            yield


class Busy(Exception):
    """The lock is held by another process and we were told not to wait."""


@contextmanager
def exclusive(home: Path, name: str, what: str) -> Iterator[None]:
    """Hold <home>/.<name>.lock or raise Busy at once (naming the holder): never wait."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f".{name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(_holder(handle)) from None
        with _holding(handle, what):
            yield

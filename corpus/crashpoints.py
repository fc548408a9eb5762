"""Named crash points for the crash-consistency tests (a failpoint, as etcd's gofail does).

`checkpoint("corpus:commit")` does nothing unless MEM_CRASH_AT=<n> is set, in which case the
n-th checkpoint the process passes kills it with SIGKILL: no finally blocks, no atexit, no
closing of SQLite or Chroma, exactly what `kill -9` leaves behind. MEM_CRASH_TRACE=<file>
appends "<n> <label>" per checkpoint, so a test can count a clean run's points and spread its
kills over them. The cost when unset is one environment lookup per call.
"""

from __future__ import annotations

import os
import signal

_passed = 0


def checkpoint(label: str) -> None:
    global _passed
    target = os.environ.get("MEM_CRASH_AT")
    trace = os.environ.get("MEM_CRASH_TRACE")
    if not target and not trace:
        return
    _passed += 1
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{_passed} {label}\n")
    if target and _passed == int(target):
        os.kill(os.getpid(), signal.SIGKILL)

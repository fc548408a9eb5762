"""Child processes for tests that die with the test run, even when pytest itself crashes.

A server a test starts is stopped by its fixture on a normal exit; when pytest is killed
(a segfault in a native library, SIGKILL from a CI timeout) no fixture runs, and the server
lived on (two `llama_cpp.server` processes were found after such runs). On Linux the kernel
can send the child a signal when its parent dies (prctl PR_SET_PDEATHSIG); that is set in the
child between fork and exec, so it holds from the child's first instruction.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen:
    """`subprocess.Popen(command, **popen)`, killed by the kernel if this process dies."""
    if not sys.platform.startswith("linux"):
        return subprocess.Popen(command, **popen)
    parent = os.getpid()
    return subprocess.Popen(command, preexec_fn=lambda: _die_with_parent(parent), **popen)


def stop(process: subprocess.Popen, log: Any = None) -> None:
    """Terminate a server a fixture started (kill it if it ignores that), then close its log."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if log is not None:
        log.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

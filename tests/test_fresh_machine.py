"""What a fresh install must get right on any x86-64 CPU: the llama.cpp build it compiled,
and test servers that never outlive the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import spawn

from mem.memory.answering.llama_build import compiled_features, native_features


def test_installed_llama_cpp_is_the_portable_build() -> None:
    # pip's own build is -march=native: on AMX CPUs it segfaulted on the first decode, and a
    # wheel built on an AVX-512 machine dies on an AVX2 laptop. The Makefile builds for AVX2.
    features = compiled_features()
    assert features.get("AVX2"), features
    assert native_features(features) == []
    # The check would see a native build: these are names llama.cpp reports for one.
    assert native_features({"AVX2": True, "AVX512": True, "AMX_INT8": True}) == [
        "AMX_INT8",
        "AVX512",
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, our killed child, is gone; init reaps it).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


PARENT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from processes import spawn
child = spawn([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_spawned_server_dies_when_the_test_run_is_killed() -> None:
    # A segfault or SIGKILL of pytest runs no fixture teardown; the child must die anyway.
    tests_dir = str(Path(__file__).parent)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, tests_dir], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), f"child {child} outlived its killed parent"
    # And a plain Popen child (what the tests used before) does outlive it: the test's power.
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert _alive(orphan.pid)
    finally:
        orphan.kill()
        orphan.wait()
    assert spawn([sys.executable, "-c", "pass"]).wait(timeout=30) == 0

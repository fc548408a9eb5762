"""Nothing leaves the machine unless an endpoint is configured.

`mem ingest` and `mem ask` run in a subprocess whose sockets cannot reach past loopback: a
sitecustomize.py (loaded by Python at start, before mem or any library) makes name lookups
and connections to anything but 127.0.0.1/::1/localhost raise, and logs every attempt. The
test passes only if both commands succeed and the log holds no outside attempt: Chroma's
telemetry (posthog), the Hugging Face hub, unstructured's analytics ping, or anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = """
import os, socket

_LOG = os.environ["MEM_NET_LOG"]
_LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0", None, ""}


def _note(kind, target):
    with open(_LOG, "a") as handle:
        handle.write(f"{kind} {target!r}\\n")


def _check(kind, host):
    if host not in _LOCAL and not str(host).startswith("127."):
        _note(kind, host)
        raise OSError(101, f"network disabled for this test: {kind} {host}")


_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def getaddrinfo(host, *args, **kwargs):
    _check("getaddrinfo", host.decode() if isinstance(host, bytes) else host)
    return _getaddrinfo(host, *args, **kwargs)


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check("connect", address[0])
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check("connect_ex", address[0])
    return _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
"""


def test_ingest_and_ask_never_touch_the_network(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    log = tmp_path / "net.log"
    log.touch()
    folder = tmp_path / "in"
    shutil.copytree(ROOT / "examples" / "lectures-notes", folder)
    # The user's environment as it is, minus what our suite sets to be quiet: mem itself
    # must keep the libraries offline (HF_HUB_OFFLINE, telemetry off) without help.
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE",
            "DO_NOT_TRACK",
            "ANONYMIZED_TELEMETRY",
            "UNSTRUCTURED_DISABLE_NOTICE",
            "SCARF_NO_ANALYTICS",
        }
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env["MEM_NET_LOG"] = str(log)
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 53), 1)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "network disabled" in probe.stderr  # the guard works
    log.write_text("")

    # Ingest, then ask, in one process (one start-up instead of two on a busy CI box).
    both = (
        "import sys; from mem.cli import cli\n"
        "for args in (sys.argv[1:7], sys.argv[7:]):\n"
        "    try: cli(args, prog_name='mem')\n"
        "    except SystemExit as exc: assert not exc.code, args\n"
    )
    home = str(tmp_path / "home")
    ingest = ["--home", home, "ingest", str(folder), "-q", "--json"]
    ask = ["--home", home, "ask", "Чем ReLU лучше сигмоиды?", "--no-llm", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", both, *ingest, *ask],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    report, answer = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert len(report["added"]) == 2
    assert answer["sources"][0]["source"].endswith("нейросети-лекция-3.md")
    assert log.read_text() == ""  # not one attempt to reach past loopback

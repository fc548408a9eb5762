"""Server mode against a real `chroma run` (chromadb's own server) on 127.0.0.1.

One server per module, on a free port, started as a child that the kernel kills if pytest
dies (tests/processes.py) and stopped by the fixture otherwise. In front of it, for some
homes, a small forwarding proxy: chromadb 1.5.9's Rust server has no token auth of its own
(it starts with CHROMA_SERVER_AUTHN_PROVIDER set and still answers a wrong token), so the
proxy plays the part of what checks the token (an auth proxy, or a server that does), and
it can also fail like a server that goes away, mid-ingest or altogether.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from homes import EXAMPLES, make_home, run_mem
from processes import free_port, spawn, stop

pytestmark = pytest.mark.model

CHROMA = Path(sys.executable).with_name("chroma")
QUESTION = "Чем ReLU лучше сигмоиды?"
TOKEN_ENV = "MEM_TEST_CHROMA_TOKEN"
TOKEN = "s3cret-token"


class Proxy:
    """Forwards to the Chroma server. `token`: requests without it get `reject` (401).
    mode "up" forwards; "down" drops every connection unanswered (a dead server, to the
    client); "down-after-upsert" forwards until the first upsert went through, then is down;
    "hung" answers the client's first probe and then holds every request unanswered (a server
    that hangs) until the proxy closes."""

    def __init__(self, upstream: int, token: str = "", reject: int = 401) -> None:
        self.upstream, self.token, self.reject, self.mode = upstream, token, reject, "up"
        self.upserts = 0
        self.closed = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if proxy.mode == "hung" and not self.path.endswith("/auth/identity"):
                    proxy.closed.wait()
                    return
                if proxy.mode == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                given = {self.headers.get("Authorization"), self.headers.get("X-Chroma-Token")}
                if proxy.token and not given & {f"Bearer {proxy.token}", proxy.token}:
                    self.send_response(proxy.reject)
                    self.send_header("Content-Length", "12")
                    self.end_headers()
                    self.wfile.write(b"Unauthorized")
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body or None, headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if self.path.endswith("/upsert"):
                    proxy.upserts += 1
                    if proxy.mode == "down-after-upsert":
                        proxy.mode = "down"

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    """A real `chroma run` on 127.0.0.1: (url, port)."""
    if not CHROMA.exists():
        pytest.fail(f"no chroma server executable beside {sys.executable} (chromadb's CLI)")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = open(data / "server.log", "wb")
    command = [str(CHROMA), "run", "--path", str(data / "db"), "--host", "127.0.0.1"]
    process = spawn([*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=data)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            pytest.fail(f"chroma run did not start: {(data / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield url, port
    stop(process, log)


@pytest.fixture(scope="module")
def proxy(chroma):
    """The token-checking proxy in front of the server (up unless a test says otherwise)."""
    front = Proxy(chroma[1], token=TOKEN)
    yield front
    front.close()


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def _client(url: str):
    """Chroma's own client (settings as mem's: one process keeps one client per address)."""
    import chromadb
    from chromadb.config import Settings

    host, port = url.removeprefix("http://").split(":")
    return chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )


def _collections(url: str) -> dict[str, int]:
    """Every collection on the server and its count."""
    return {c.name: c.count() for c in _client(url).list_collections()}


def _notes(folder: Path) -> Path:
    shutil.copytree(EXAMPLES / "lectures-notes", folder)
    return folder


def _server_home(path: Path, url: str, **settings) -> Path:
    return make_home(path, chroma_url=url, chroma_token_env=TOKEN_ENV, **settings)


def _set(home: Path, key: str, value: str) -> None:
    """Change one setting of a home's config.toml in place."""
    config = home / "config.toml"
    text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", config.read_text())
    assert n == 1
    config.write_text(text)


def _ask(home: Path) -> list[tuple[str, float]]:
    code, answer, err = run_mem(home, "ask", QUESTION, "--no-llm", "--json", "-k", "4")
    assert code == 0, err
    return [(s["chunk_id"], s["score"]) for s in answer["sources"]]


def _healthy(home: Path) -> dict:
    code, report, err = run_mem(home, "doctor", "--json")
    assert code == 0 and report["healthy"], (err, report)
    return report


def _one_error_line(code: int, err: str, *words: str, logged: bool = False) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 3, (code, err)
    if logged:  # the nightly job also logs its run to stderr (and runs/nightly.log)
        assert all(" mem.nightly " in line for line in lines[:-1]), err
        lines = lines[-1:]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory, proxy) -> Path:
    """The shipped notes, ingested through the proxy with the right token."""
    os.environ[TOKEN_ENV] = TOKEN
    try:
        home = _server_home(tmp_path_factory.mktemp("a") / "home", proxy.url)
        folder = _notes(tmp_path_factory.mktemp("a-in") / "notes")
        code, report, err = run_mem(home, "ingest", str(folder), "-q", "--json")
        assert code == 0, err
        assert len(report["added"]) == 2
    finally:
        del os.environ[TOKEN_ENV]
    return home


def test_ingest_ask_doctor_on_the_server(home: Path, proxy: Proxy, chroma, token) -> None:
    assert _ask(home)[0][0]  # found something
    code, answer, _ = run_mem(home, "ask", QUESTION, "--no-llm", "--json")
    assert code == 0 and answer["sources"][0]["source"].endswith("нейросети-лекция-3.md")
    report = _healthy(home)
    assert report["vectors"] == f"server {proxy.url}"
    assert "chroma/chroma.sqlite3" not in report["sqlite"]
    code, status, _ = run_mem(home, "status", "--json")
    assert code == 0 and status["index_in_sync"] and status["chunks"] > 0
    # The vectors are on the server, under this home's prefix, and nothing in the home.
    prefix = "mem-" + (home / "home-id").read_text().strip()
    on_server = _collections(chroma[0])
    mine = {n: c for n, c in on_server.items() if n.startswith(f"{prefix}-chunks-")}
    assert sum(mine.values()) == status["chunks"]
    assert not (home / "chroma").exists()


def test_kill_minus_nine_mid_ingest_then_rerun_completes(tmp_path: Path, chroma) -> None:
    home = make_home(tmp_path / "home", chroma_url=chroma[0])
    folder = _notes(tmp_path / "notes")
    trace = tmp_path / "trace"
    # SIGKILL at the first checkpoint inside the index write: the corpus holds both files,
    # the server none of their vectors yet (corpus/crashpoints.py).
    env = {**os.environ, "MEM_CRASH_TRACE": str(trace), "MEM_CRASH_AT": "8"}
    killed = subprocess.run(
        [sys.executable, "-m", "mem.cli", "--home", str(home), "ingest", str(folder), "-q"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    labels = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    assert labels[-1] == "index:embedded" and labels.count("ingest:file-stored") == 2, labels
    code, status, err = run_mem(home, "status", "--json")
    assert code == 0, err
    assert status["chunks"] > 0 and status["index"]["vectors"] < status["chunks"]
    code, report, err = run_mem(home, "ingest", str(folder), "-q", "--json")
    assert code == 0, err
    assert report["repaired"] > 0 and report["unchanged"] == 2
    code, after, _ = run_mem(home, "status", "--json")
    assert after["index_in_sync"] and after["chunks"] == status["chunks"]
    _healthy(home)
    assert _ask(home)


def test_push_then_pull_round_trip(tmp_path: Path, chroma) -> None:
    home = make_home(tmp_path / "home", sentence_vectors=True)  # embedded, both kinds
    code, _, err = run_mem(home, "ingest", str(_notes(tmp_path / "notes")), "-q")
    assert code == 0, err
    embedded = _ask(home)
    _set(home, "chroma_url", chroma[0])
    code, pushed, err = run_mem(home, "index", "push", "--json")
    assert code == 0, err
    assert pushed["verified"] and pushed["copied"] > 0 and pushed["skipped"] == 0
    counts = {c["name"]: c["source"] for c in pushed["collections"]}
    assert any("-sentences-" in name and n for name, n in counts.items())
    on_server = _collections(chroma[0])
    assert {name: on_server[name] for name in counts} == counts  # equal counts
    # Resumable: what is there is skipped; what went missing (an interrupted copy) is copied.
    client = _client(chroma[0])
    ru = next(n for n in counts if "-chunks-" in n and n.endswith("-ru"))
    lost = client.get_collection(ru).get(limit=2)["ids"]
    client.get_collection(ru).delete(ids=lost)
    code, again, err = run_mem(home, "index", "push", "--json")
    assert code == 0, err
    assert again["copied"] == 2 and again["skipped"] == pushed["copied"] - 2
    assert again["verified"]
    _healthy(home)
    assert _ask(home) == embedded  # identical results from the server's copy
    # Pull into the same memory on another machine: the home without its embedded index.
    twin = tmp_path / "twin"
    shutil.copytree(home, twin, ignore=shutil.ignore_patterns("chroma"))
    code, pulled, err = run_mem(twin, "index", "pull", "--json")
    assert code == 0, err
    assert pulled["verified"] and pulled["copied"] == pushed["copied"]
    _set(twin, "chroma_url", "")
    _healthy(twin)
    assert _ask(twin) == embedded


def test_two_homes_on_one_server_stay_apart(home: Path, tmp_path: Path, proxy, token) -> None:
    other = _server_home(tmp_path / "other", proxy.url)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "baikal.md").write_text(
        "# Байкал\n\nБайкал — самое глубокое озеро на планете, его глубина 1642 метра.\n",
        encoding="utf-8",
    )
    code, _, err = run_mem(other, "ingest", str(folder), "-q")
    assert code == 0, err
    assert (other / "home-id").read_text() != (home / "home-id").read_text()
    code, answer, _ = run_mem(other, "ask", QUESTION, "--no-llm", "--json")
    assert {s["source"] for s in answer["sources"]} == {str(folder / "baikal.md")}
    # Each doctor sees only its own vectors: neither deletes the other's as orphans.
    _healthy(other)
    _healthy(home)
    code, status, _ = run_mem(home, "status", "--json")
    assert status["index_in_sync"]


def test_backup_and_restore_keep_the_vectors_on_the_server(
    home: Path, tmp_path: Path, token
) -> None:
    code, made, err = run_mem(home, "backup", str(tmp_path / "backup"), "--json")
    assert code == 0, err
    assert made["manifest"]["index_server"] and not made["manifest"]["index_included"]
    assert not any(name.startswith("chroma/") for name in made["manifest"]["files"])
    restored = tmp_path / "restored"
    code, report, err = run_mem(restored, "restore", str(tmp_path / "backup"), "--json")
    assert code == 0, err
    assert report["doctor"]["healthy"] and not report["rebuilt_index"]
    # The restored home is the same memory: the same collections, the same answers.
    assert (restored / "home-id").read_text() == (home / "home-id").read_text()
    assert _ask(restored) == _ask(home)
    assert not (restored / "chroma").exists()


def test_wrong_or_missing_token_is_one_clear_error(home: Path, monkeypatch, proxy) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    code, _, err = run_mem(home, "ask", QUESTION, "--no-llm")
    _one_error_line(code, err, proxy.url, "refused the token", f"${TOKEN_ENV}", "401")
    monkeypatch.delenv(TOKEN_ENV)
    code, _, err = run_mem(home, "doctor")
    _one_error_line(code, err, proxy.url, "no token", "401")


def test_server_going_away_mid_ingest_loses_nothing(tmp_path: Path, chroma) -> None:
    flaky = Proxy(chroma[1])
    try:
        home = make_home(tmp_path / "home", chroma_url=flaky.url)
        folder = _notes(tmp_path / "notes")
        flaky.mode = "down-after-upsert"
        code, _, err = run_mem(home, "ingest", str(folder), "-q")
        _one_error_line(code, err, flaky.url, "not reachable", "chroma run")
        assert flaky.upserts == 1  # died after the first write reached the server
        with sqlite3.connect(home / "corpus.db") as db:
            stored = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        assert stored > 0  # the corpus kept what was read
        flaky.mode = "up"
        code, report, err = run_mem(home, "ingest", str(folder), "-q", "--json")
        assert code == 0, err
        assert report["repaired"] > 0
        code, status, _ = run_mem(home, "status", "--json")
        assert status["index_in_sync"] and status["chunks"] == stored
    finally:
        flaky.close()


def test_down_server_is_one_line_and_exit_3_everywhere(tmp_path: Path, chroma) -> None:
    dead = Proxy(chroma[1])
    try:
        home = make_home(tmp_path / "home", chroma_url=dead.url)
        folder = _notes(tmp_path / "notes")
        code, _, err = run_mem(home, "ingest", str(folder), "-q")
        assert code == 0, err
        code, _, err = run_mem(home, "backup", str(tmp_path / "backup"))
        assert code == 0, err
        dead.mode = "down"
        commands = [
            ("ingest", str(folder), "-q"),
            ("ask", QUESTION, "--no-llm"),
            ("doctor",),
            ("status",),
            ("backup", str(tmp_path / "backup-2")),
            ("schedule", "run-now"),
            ("index", "pull"),
        ]
        for args in commands:
            code, _, err = run_mem(home, *args)
            _one_error_line(code, err, dead.url, "not reachable", logged=args[0] == "schedule")
        code, _, err = run_mem(tmp_path / "restored", "restore", str(tmp_path / "backup"))
        _one_error_line(code, err, dead.url, "not reachable")
        # mem serve, as a real process: it refuses to start, exit code 3, no traceback.
        served = subprocess.run(
            [sys.executable, "-m", "mem.cli", "--home", str(home), "serve"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "MEM_API_KEY": ""},
        )
        _one_error_line(served.returncode, served.stderr, dead.url, "not reachable")
    finally:
        dead.close()


def test_a_server_that_never_answers_is_down_not_a_hang(tmp_path: Path, chroma) -> None:
    # Two ways to hang: a socket that takes the connection and never answers (the probe
    # times out), and a server that answers the probe and then nothing (Chroma's client
    # asks for its tenant and database before any timeout of ours applies). Each command
    # runs as a process with a hard deadline, so a regression fails here instead of hanging.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    hung = Proxy(chroma[1])
    try:
        home = make_home(tmp_path / "home", chroma_url=hung.url, request_timeout_s=2.0)
        code, _, err = run_mem(home, "ingest", str(_notes(tmp_path / "notes")), "-q")
        assert code == 0, err
        hung.mode = "hung"
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        for url, args in ((hung.url, ("ask", QUESTION, "--no-llm")), (silent_url, ("status",))):
            _set(home, "chroma_url", url)
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "mem.cli", "--home", str(home), *args],
                capture_output=True,
                text=True,
                timeout=90,
            )
            _one_error_line(done.returncode, done.stderr, url, "not reachable")
            assert time.monotonic() - started < 45, (args, done.stderr)
    finally:
        hung.close()
        silent.close()

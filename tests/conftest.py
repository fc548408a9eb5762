from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

# The suite runs offline, as users do by default.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A private copy of the shipped examples, safe to modify."""
    target = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", target)
    return target


@pytest.fixture(scope="session")
def xquad_slice() -> list[dict]:
    return json.loads((FIXTURES / "xquad" / "slice.json").read_text(encoding="utf-8"))["paragraphs"]

"""Every key of the default config.toml reaches the code that uses it.

A setting that is parsed and then dropped on the way (as `[embedding] batch_size` once was)
looks configurable and is not. The sections a package owns are passed down unchanged, so a
record of which of their fields the code reads during a real ingest and search shows any that
nothing reads; the other sections are checked by name against the code that reads them.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import fields, replace
from pathlib import Path

import pytest
from homes import EXAMPLES, make_home

from mem.memory.config import DEFAULT_CONFIG, Config, parse_config

ROOT = Path(__file__).resolve().parents[1]
OWNED = ("embedding", "retrieval", "index", "chunking")  # passed down as parsed


def test_default_text_and_code_defaults_agree() -> None:
    # The commented file a user edits and the dataclass defaults are one set of values.
    assert parse_config(DEFAULT_CONFIG) == Config()
    text = tomllib.loads(DEFAULT_CONFIG)
    for section in fields(Config):
        names = {f.name for f in fields(section.default_factory())}
        assert set(text[section.name]) == names, f"[{section.name}] keys differ from its class"


def _recording(instance: object, section: str, seen: set[tuple[str, str]]) -> object:
    """A copy of a frozen options instance that notes each field the code reads."""
    cls = type(instance)
    names = {f.name for f in fields(cls)}

    class Recording(cls):  # type: ignore[misc, valid-type]
        def __getattribute__(self, name: str):
            if name in names:
                seen.add((section, name))
            return object.__getattribute__(self, name)

    return Recording(**{name: getattr(instance, name) for name in names})


@pytest.mark.model
def test_owned_sections_are_read_by_ingest_and_search(tmp_path: Path) -> None:
    from mem.memory import Memory

    seen: set[tuple[str, str]] = set()
    home = make_home(tmp_path / "home", sentence_vectors=True)
    with Memory(home) as memory:
        c = memory.config
        memory.config = replace(
            c, **{name: _recording(getattr(c, name), name, seen) for name in OWNED}
        )
        # A note longer than [chunking] max_tokens, so it is split with an overlap.
        long_note = tmp_path / "notes" / "long.md"
        long_note.parent.mkdir()
        long_note.write_text("Колесо вращается вокруг оси. " * 120, encoding="utf-8")
        memory.ingest([EXAMPLES, long_note.parent], progress=False)
        assert memory.retrieve("Что такое колесо?")
    expected = {(name, f.name) for name in OWNED for f in fields(type(getattr(Config(), name)))}
    # The reranker's depth is read only when a reranker is configured (tests/test_retrieval.py
    # runs one); every other owned key is read on this path.
    # The server's token variable, collection prefix and timeout only in server mode
    # (tests/test_chroma_server.py runs one).
    server_only = {
        ("index", "chroma_token_env"),
        ("index", "collection_prefix"),
        ("index", "request_timeout_s"),
    }
    missing = expected - seen - {("retrieval", "rerank_top")} - server_only
    assert not missing, f"parsed but never read: {sorted(missing)}"


def _attribute_reads() -> dict[str, set[str]]:
    """attribute name -> files (outside memory/config.py) that read `<something>.<name>`."""
    reads: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in ("tests", "benchmarks", "vendor") or parts[0].startswith("."):
            continue
        if path == ROOT / "memory" / "config.py" or parts[0].endswith(".egg-info"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                reads.setdefault(node.attr, set()).add(str(path.relative_to(ROOT)))
    return reads


def test_every_other_key_is_read_somewhere() -> None:
    reads = _attribute_reads()
    unread = [
        f"[{section.name}] {f.name}"
        for section in fields(Config)
        if section.name not in OWNED
        for f in fields(section.default_factory())
        if f.name not in reads
    ]
    assert not unread, f"no code reads {unread}"

"""The Memory facade over one memory home: config, paths, locking, ask(), conversation log.

The names are loaded on first use (PEP 562), so that light modules of this package, such as
the LLM backend registry the CLI reads its choices from, import without numpy and Chroma.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mem.memory.core import Memory
    from mem.memory.records import Answer, IngestReport, Source

__all__ = ["Answer", "IngestReport", "Memory", "Source"]


def __getattr__(name: str):
    if name == "Memory":
        from mem.memory.core import Memory

        return Memory
    if name in ("Answer", "IngestReport", "Source"):
        from mem.memory import records

        return getattr(records, name)
    raise AttributeError(f"module 'mem.memory' has no attribute {name!r}")

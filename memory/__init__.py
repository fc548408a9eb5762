"""The Memory facade over one memory home: config, paths, locking, ask(), conversation log."""

from mem.memory.core import Memory
from mem.memory.records import Answer, IngestReport, Source

__all__ = ["Answer", "IngestReport", "Memory", "Source"]

"""Readers that turn files into chunks: documents, chat logs, audio; text repair; chunking."""

from mem.ingest.readers import ReadResult, UnsupportedFile, read_file, supported

__all__ = ["ReadResult", "UnsupportedFile", "read_file", "supported"]

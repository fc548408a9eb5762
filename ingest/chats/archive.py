"""Reading one member of an export .zip without trusting the archive's sizes."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from mem.ingest.chats.model import ChatParseError

MAX_UNCOMPRESSED = 2 * 1024**3  # 2 GiB: far above any real conversations.json
MAX_RATIO = 100  # JSON and text compress 5-20x; zip bombs compress hundreds to millions x
_RATIO_FLOOR = 1024**2  # tiny members may compress absurdly well without harm
_CHUNK = 1024**2


def read_member(
    path: Path,
    member: str,
    max_bytes: int = MAX_UNCOMPRESSED,
    max_ratio: float = MAX_RATIO,
) -> bytes:
    """The bytes of `member`, refusing (ChatParseError) a member that would unpack past
    `max_bytes` or that expands more than `max_ratio` times its compressed size. Sizes are
    checked as declared and again while reading, since a crafted header can lie."""
    label = f"{path.name}/{member}"
    try:
        return _read_capped(path, member, label, max_bytes, max_ratio)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ChatParseError(f"{label}: damaged zip ({exc})") from exc


def _read_capped(path: Path, member: str, label: str, max_bytes: int, max_ratio: float) -> bytes:
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        _check_declared(info, label, max_bytes, max_ratio)
        limit = info.file_size  # already checked against max_bytes and the ratio
        chunks: list[bytes] = []
        total = 0
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise ChatParseError(
                        f"{label}: refused, unpacks past {limit} bytes (zip bomb?)"
                    )
                chunks.append(chunk)
    return b"".join(chunks)


def _check_declared(info: zipfile.ZipInfo, label: str, max_bytes: int, max_ratio: float) -> None:
    if info.file_size > max_bytes:
        raise ChatParseError(
            f"{label}: refused, unpacks to {info.file_size} bytes (limit {max_bytes})"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_FLOOR and ratio > max_ratio:
        raise ChatParseError(
            f"{label}: refused, compression ratio {ratio:.0f}:1 exceeds {max_ratio:.0f}:1 "
            "(zip bomb?)"
        )

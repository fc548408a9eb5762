"""`mem backup OUT` / `mem restore IN`: a consistent copy of a memory home and its way back.

SQLite files (corpus, lexical index, embedding cache, Chroma's own database) are copied with
SQLite's online backup API, which gives a consistent snapshot even of a WAL database that a
reader has open. The whole backup is taken under the writer lock, so no ingest changes the
home half-way. Chroma's segment files are copied as they are (exact vectors, a fast restore);
with `index=False` they are left out and restore rebuilds them from the corpus, re-embedding
nothing that the embedding cache holds. Either way restore ends by checking the corpus and
every index agree (and repairing them), so a backup is only as trustworthy as its corpus.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from mem import __version__
from mem.corpus.records import utc_now
from mem.index.store import CHROMA_DB, CHROMA_DIR, EMBEDDING_CACHE_DB, INDEX_DIR, LEXICAL_DB
from mem.memory.home import HOME_ID

FORMAT = 1
MANIFEST = "manifest.json"
# SQLite databases of a home, relative to it; each is snapshotted with the backup API.
_DATABASES = ("corpus.db", LEXICAL_DB, EMBEDDING_CACHE_DB, CHROMA_DB)
# Plain folders a home may hold (trained adapters, built datasets, run logs), copied as is.
_FOLDERS = ("adapters", "datasets", "runs")
# Small files copied as they are; home-id names the home's collections on a Chroma server,
# so a restored home finds its vectors there again.
_FILES = ("config.toml", HOME_ID)


class BackupError(Exception):
    """The backup or restore cannot go ahead; the message says why in one line."""


@dataclass
class BackupReport:
    out: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    manifest: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "out": self.out,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "manifest": self.manifest,
        }


@dataclass
class RestoreReport:
    home: str
    files: int = 0
    seconds: float = 0.0
    rebuilt_index: bool = False
    index_server: str = ""  # the vectors are on this Chroma server, checked by doctor
    counts: dict = field(default_factory=dict)
    doctor: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "home": self.home,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "rebuilt_index": self.rebuilt_index,
            "index_server": self.index_server,
            "counts": self.counts,
            "doctor": self.doctor,
        }


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _snapshot(source: Path, target: Path) -> None:
    """A consistent copy of a (possibly WAL, possibly open) SQLite database."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # One self-contained file: no -wal beside it in the backup.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _is_empty_home(home: Path) -> bool:
    # Lock files are created by merely opening a home; they hold nothing.
    return not home.exists() or all(p.name.startswith(".") for p in home.iterdir())


def backup(home: str | Path | None, out: str | Path, index: bool = True) -> BackupReport:
    """Write a backup of the memory home into the new folder `out`."""
    import time

    from mem.memory.core import Memory
    from mem.memory.home import resolve_home
    from mem.memory.lock import writer_lock

    started = time.perf_counter()
    home = resolve_home(home)
    out = Path(out).expanduser().resolve()
    if not (home / "corpus.db").exists():
        raise BackupError(f"{home} holds no memory (no corpus.db)")
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} exists and is not empty; give a new folder")
    if out == home or home in out.parents:
        raise BackupError(f"{out} is inside the memory home; back up to another folder")
    report = BackupReport(out=str(out))
    with writer_lock(home, "mem backup"), Memory(home) as memory:
        counts = memory.corpus.counts()
        index_counts = {
            "vectors": memory.index.vectors.count(),
            "sentences": memory.index.sentences.count() if memory.index.sentences else 0,
            "lexical": memory.index.lexical.count(),
        }
        schema = memory.corpus.schema_version
        model = memory.config.embedding.model
        server = memory.config.index.chroma_url
        # In server mode the vectors stay on the server (back it up there); a restore
        # checks them against the corpus and re-indexes what is missing.
        index = index and not server
        out.mkdir(parents=True, exist_ok=True)
        for name in _DATABASES:
            if name == CHROMA_DB and not index:
                continue
            if (home / name).exists():
                _snapshot(home / name, out / name)
        if index and (home / CHROMA_DIR).is_dir():
            # Segment folders (HNSW files); no ingest runs while we hold the writer lock.
            for entry in (home / CHROMA_DIR).iterdir():
                if entry.is_dir():
                    shutil.copytree(entry, out / CHROMA_DIR / entry.name)
        for folder in _FOLDERS:
            if (home / folder).is_dir():
                shutil.copytree(home / folder, out / folder, symlinks=True)
        for name in _FILES:
            if (home / name).exists():
                shutil.copy2(home / name, out / name)
    files = {str(p.relative_to(out)): _sha256(p) for p in sorted(out.rglob("*")) if p.is_file()}
    report.manifest = {
        "format": FORMAT,
        "mem_version": __version__,
        "created": utc_now(),
        "home": str(home),
        "schema_version": schema,
        "embedding_model": model,
        "index_included": index,
        "index_server": server,
        "counts": counts,
        "index": index_counts,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(report.manifest, indent=1), encoding="utf-8")
    report.files = len(files)
    report.bytes = sum((out / name).stat().st_size for name in files)
    report.seconds = time.perf_counter() - started
    return report


def read_manifest(source: Path) -> dict:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} is not a mem backup (no readable {MANIFEST})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: backup format {manifest.get('format')} is not {FORMAT}")
    return manifest


def verify(source: Path, manifest: dict) -> None:
    """Every file the manifest lists is there with its checksum."""
    for name, digest in manifest["files"].items():
        path = source / name
        if not path.is_file():
            raise BackupError(f"{source}: {name} is missing from the backup")
        if _sha256(path) != digest:
            raise BackupError(f"{source}: {name} does not match its checksum (damaged backup)")


def restore(source: str | Path, home: str | Path | None, force: bool = False) -> RestoreReport:
    """Restore a backup into a memory home (empty, or replaced with force=True)."""
    import time

    from mem.memory.home import resolve_home
    from mem.memory.lock import writer_lock
    from mem.memory.operations.doctor import run_doctor

    started = time.perf_counter()
    source = Path(source).expanduser().resolve()
    home = resolve_home(home)
    manifest = read_manifest(source)
    verify(source, manifest)
    if not _is_empty_home(home) and not force:
        raise BackupError(f"{home} is not empty; restore into a new home or add --force")
    report = RestoreReport(home=str(home))
    with writer_lock(home, "mem restore"):
        if force:
            for name in ("corpus.db", *_FILES, INDEX_DIR, CHROMA_DIR, *_FOLDERS):
                _remove(home / name)
        for name in manifest["files"]:
            target = home / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)
        report.files = len(manifest["files"])
    report.index_server = manifest.get("index_server", "")
    report.rebuilt_index = not manifest["index_included"] and not report.index_server
    # Doctor checks (and, without copied vectors, rebuilds) corpus <-> index agreement.
    checked = run_doctor(home)
    report.doctor = checked.to_json()
    if not checked.ok:
        raise BackupError(f"restored, but {home} does not check out: {checked.unrepaired}")
    from mem.memory.core import Memory

    with Memory(home) as memory:
        report.counts = memory.corpus.counts()
    if report.counts["chunks"] != manifest["counts"]["chunks"]:
        raise BackupError(
            f"restored {report.counts['chunks']} chunks, the backup says "
            f"{manifest['counts']['chunks']}"
        )
    report.seconds = time.perf_counter() - started
    return report


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

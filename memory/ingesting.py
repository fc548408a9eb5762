"""The ingest run: files -> corpus (first, per file, atomically) -> index (second, batched).

A crash between the two leaves the corpus ahead of the index; the next run reconciles the
index to the corpus before it starts, so nothing is lost or duplicated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mem.corpus import Chunk, Corpus, Document
from mem.corpus.crashpoints import checkpoint
from mem.corpus.records import StoredTranscript, make_chunk_id, utc_now
from mem.index import Index
from mem.ingest import ReadResult, UnsupportedFile, read_file
from mem.ingest.audio import VIDEO_EXTENSIONS, AudioError, TranscribeOptions, is_media_file
from mem.ingest.chats import detect_chat_format
from mem.ingest.chunking import ChunkingOptions
from mem.ingest.documents import DocumentError
from mem.ingest.readers import media_pieces
from mem.ingest.walk import Found, discover
from mem.memory.records import IngestReport

# Index writes are batched across files: embedding in larger batches is faster. A file with
# more chunks is indexed in batches of this size too, so memory stays bounded by one batch,
# the embedding cache keeps each batch's vectors if the run is killed, and its progress shows.
_BATCH_CHUNKS = 64


@dataclass
class _Pending:
    chunks: list[Chunk]
    stale_ids: list[str]
    # Per chunk: the share of its file's bytes it stands for, which the overall progress bar
    # advances by once the chunk is indexed (indexing is where the time goes).
    weights: list[float] = field(default_factory=list)


class _Progress:
    """Bars on stderr: the whole run by bytes of files (rate and ETA), and one file's chunks
    while a large file is indexed. tqdm shows nothing when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.overall = None

    def start(self, total_bytes: int) -> None:
        from tqdm import tqdm

        self.overall = tqdm(
            total=total_bytes,
            desc="ingest",
            unit="B",
            unit_scale=True,
            leave=False,
            disable=None if self.enabled else True,
        )

    def file(self, name: str, total_chunks: int):
        from tqdm import tqdm

        return tqdm(
            total=total_chunks,
            desc=name[-30:],
            unit="chunk",
            leave=False,
            position=1,
            disable=None if self.enabled else True,
        )

    def advance(self, n_bytes: float) -> None:
        if self.overall is not None:
            self.overall.update(n_bytes)

    def current(self, name: str) -> None:
        if self.overall is not None:
            self.overall.set_postfix_str(name[-30:], refresh=False)

    def close(self) -> None:
        if self.overall is not None:
            self.overall.close()


def to_chunks(source: str, result: ReadResult) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=make_chunk_id(piece.id_scope or source, piece.text, piece.position),
            source=source,
            position=piece.position,
            text=piece.text,
            title=piece.title,
            locator=piece.locator,
            meta=piece.meta,
        )
        for piece in result.pieces
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # vanished since the walk: _ingest_one reports it


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@dataclass(frozen=True)
class MediaSettings:
    options: TranscribeOptions
    model_dir: Path  # where the packaged whisper model is assembled once
    retranscribe: bool = False


class IngestRun:
    def __init__(
        self,
        corpus: Corpus,
        index: Index,
        chunking: ChunkingOptions,
        media: MediaSettings,
        progress: bool = True,
        max_document_mb: int = 20,
        tags: Sequence[str] = (),
    ) -> None:
        self.max_document_bytes = max_document_mb * 2**20
        self.tags = tuple(tags)  # added to every file this run finds, changed or not
        self.corpus = corpus
        self.index = index
        self.chunking = chunking
        self.media = media
        self.progress = progress
        self.report = IngestReport(tags=list(self.tags))
        self._pending = _Pending([], [])
        self._bars = _Progress(progress)

    def run(self, paths: Sequence[Path], prune: bool = False) -> IngestReport:
        self.report.repaired = self.repair_index()
        checkpoint("ingest:reconciled")
        found = list(discover(list(paths)))
        files = [f for f in found if isinstance(f, Found)]
        for item in found:
            if not isinstance(item, Found):
                self.report.failed.append((str(item[0]), item[1]))
        sizes = [_size(item.path) for item in files]
        self._bars.start(sum(sizes))
        try:
            for item, size in zip(files, sizes, strict=True):
                self._bars.current(item.path.name)
                if not self._ingest_one(item, size):
                    self._bars.advance(size)  # nothing to index: the file is done
        finally:
            # Even when the run stops early (a missing model), what is in the corpus is indexed.
            self._flush()
            self._bars.close()
        if prune:
            roots = [Path(p).resolve() for p in paths]
            self._prune(roots)
        return self.report

    def repair_index(self) -> int:
        bar = None

        def started(missing: int) -> None:
            nonlocal bar
            if missing:
                bar = self._bars.file("repair index", missing)

        try:
            report = self.index.reconcile(
                self.corpus.chunk_ids(),
                self.corpus.chunks,
                on_batch=lambda n: bar.update(n) if bar is not None else None,
                on_start=started,
            )
        finally:
            if bar is not None:
                bar.close()
        return report.added + report.removed

    def _ingest_one(self, item: Found, size: int) -> bool:
        """Read and store one file; True when it left chunks to index."""
        path, source = item.path, str(item.path)
        try:
            stat = path.stat()
            state = self.corpus.document_state(source)
            if state and state.size == stat.st_size and state.mtime == stat.st_mtime:
                self.corpus.tag_document(source, self.tags)
                self.report.unchanged.append(source)
                return False
            media = is_media_file(path)
            if not media:
                self._check_size(path, stat.st_size)
            if media:  # recordings can be gigabytes: hash them as a stream
                with open(path, "rb") as handle:
                    data = b""
                    content_hash = hashlib.file_digest(handle, "sha256").hexdigest()
            else:
                data = path.read_bytes()
                content_hash = hashlib.sha256(data).hexdigest()
            if (
                state
                and state.content_hash == content_hash
                and not (media and self.media.retranscribe)
            ):
                self.corpus.touch_document(source, stat.st_mtime)
                self.corpus.tag_document(source, self.tags)
                self.report.unchanged.append(source)
                return False
            result = (
                self._read_media(path, content_hash)
                if media
                else read_file(path, data, self.chunking)
            )
        except UnsupportedFile as exc:
            # Inside a folder, other files are normal (images, archives); named ones are errors.
            target = self.report.failed if item.explicit else self.report.skipped
            target.append((source, str(exc)))
            return False
        except OSError as exc:  # unreadable, vanished since the walk, …
            self.report.failed.append((source, exc.strerror or _one_line(exc)))
            return False
        except Exception as exc:
            self.report.failed.append((source, _one_line(exc)))
            return False
        chunks = to_chunks(source, result)
        document = Document(
            source=source,
            content_hash=content_hash,
            kind=result.kind,
            title=result.title,
            n_chunks=len(chunks),
            ingested_at=utc_now(),
            size=stat.st_size,
            tags=self.tags,
        )
        checkpoint("ingest:file-read")
        try:
            stale = self.corpus.replace_document(
                document, chunks, mtime=stat.st_mtime, conversations=result.conversations
            )
        except Exception as exc:  # rolled back: this file is not stored, the batch goes on
            self.report.failed.append((source, f"cannot store: {_one_line(exc)}"))
            return False
        checkpoint("ingest:file-stored")
        for warning in result.warnings:
            self.report.failed.append((source, warning))
        (self.report.updated if state else self.report.added).append(source)
        self.report.chunks_added += len(chunks)
        self.report.chunks_removed += len(stale)
        if len(chunks) > _BATCH_CHUNKS:
            self._flush()  # what earlier files left, then this file in batches, with its bar
            self._pending = _Pending(chunks, stale, [size / len(chunks)] * len(chunks))
            bar = self._bars.file(path.name, len(chunks))
            try:
                self._flush(bar)
            finally:
                bar.close()
            return True
        self._pending.chunks += chunks
        self._pending.stale_ids += stale
        self._pending.weights += [size / max(1, len(chunks))] * len(chunks)
        if not chunks:
            self._bars.advance(size)
        if len(self._pending.chunks) >= _BATCH_CHUNKS:
            self._flush()
        return True

    def _check_size(self, path: Path, size: int) -> None:
        """Refuse an oversized document before reading it (chat exports are exempt)."""
        limit = self.max_document_bytes
        if not limit or size <= limit:
            return
        if path.suffix.lower() in (".json", ".jsonl", ".zip") or detect_chat_format(path):
            return  # chat exports have their own limits (ingest/chats/archive.py)
        raise DocumentError(
            f"too large ({size / 2**20:.0f} MB > {limit / 2**20:.0f} MB limit; "
            "see [ingest] max_document_mb)"
        )

    def _read_media(self, path: Path, content_hash: str) -> ReadResult:
        """Transcribe (or reuse the stored transcript of the same audio) and chunk by time."""
        options = self.media.options
        stored = None
        if not self.media.retranscribe:
            stored = self.corpus.transcript(content_hash, options.model)
        if stored is None:
            from tqdm import tqdm

            from mem.ingest.audio import transcribe

            bar = tqdm(
                desc=path.name[-30:],
                unit="s",
                unit_scale=True,
                leave=False,
                disable=None if self.progress else True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio",
            )

            def advance(done: float, total: float) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                transcript = transcribe(path, options, self.media.model_dir, advance)
            finally:
                bar.close()
            segments = [
                {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text}
                for s in transcript.segments
            ]
            # Stored at once: an interrupted ingest later reuses it instead of redoing the work.
            stored = StoredTranscript(
                options.model,
                transcript.language,
                transcript.language_probability,
                transcript.duration,
                segments,
            )
            self.corpus.save_transcript(content_hash, stored)
        pieces = media_pieces(path.name, stored.segments, stored.language, self.chunking)
        if not pieces:
            raise AudioError(f"{path.name}: no speech found")
        kind = "video" if path.suffix.lower() in VIDEO_EXTENSIONS else "audio"
        return ReadResult(kind=kind, title=path.name, pieces=pieces)

    def _flush(self, file_bar=None) -> None:
        pending, self._pending = self._pending, _Pending([], [])
        self.index.delete(pending.stale_ids)
        for start in range(0, len(pending.chunks), _BATCH_CHUNKS):
            batch = pending.chunks[start : start + _BATCH_CHUNKS]
            self.index.add(batch)
            checkpoint("ingest:flushed")
            self._bars.advance(sum(pending.weights[start : start + _BATCH_CHUNKS]))
            if file_bar is not None:
                file_bar.update(len(batch))

    def _prune(self, roots: list[Path]) -> None:
        gone = []
        for source in self.corpus.sources():
            path = Path(source)
            under = any(path == r or r in path.parents for r in roots)
            if under and not path.exists():
                gone.append(source)
        removed_ids = self.corpus.remove_documents(gone)
        checkpoint("ingest:pruned-corpus")
        self.index.delete(removed_ids)
        self.report.removed += gone
        self.report.chunks_removed += len(removed_ids)

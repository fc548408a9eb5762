"""The `mem` command line: parse, call one library function, print. No logic here."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import click

from mem import __version__

# The choices the CLI offers come from the registries that build them (light modules).
from mem.adapters.export import FORMATS as ADAPTER_FORMATS
from mem.distill.export import FORMATS as DATASET_FORMATS
from mem.memory.answering.llm import BACKENDS

# Exit codes, stated once: scripts branch on them.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some inputs failed, the rest was done
EXIT_USAGE = 2  # click's own code for bad usage
EXIT_FATAL = 3  # nothing was done (bad config, memory busy, broken install)


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=None))


def _shown(text: str) -> str:
    """One printable line: undecodable file-name bytes as \\xNN, newlines as \\n."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _open_memory(ctx: click.Context):
    from mem.memory import Memory
    from mem.memory.config import ConfigError

    try:
        return Memory(ctx.obj["home"])
    except ConfigError as exc:
        raise Fatal(str(exc)) from exc


@contextlib.contextmanager
def _fatal_on(*errors: type[BaseException]) -> Iterator[None]:
    """The library's expected failures (a lock held, a bad dataset) as one clear line and
    EXIT_FATAL, not a traceback."""
    try:
        yield
    except errors as exc:
        raise Fatal(str(exc)) from exc


class Fatal(click.ClickException):
    exit_code = EXIT_FATAL


def _names(ctx: click.Context, param: click.Parameter, value):
    """Tag and domain names (one, or a tuple of repeated options) as click usage errors."""
    from mem.corpus.records import check_tags

    try:
        check_tags((value,) if isinstance(value, str) else value or ())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


class _Commands(click.Group):
    """Every command: a vector index that cannot be reached (a Chroma server down, or
    refusing the token) is one line naming the server and EXIT_FATAL, not a traceback."""

    def invoke(self, ctx: click.Context):
        from mem.index.vectors import IndexUnavailable

        try:
            return super().invoke(ctx)
        except IndexUnavailable as exc:
            raise Fatal(str(exc)) from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mem")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="MEM_HOME",
    help="Memory home folder (default: $MEM_HOME, else the platform data dir).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """mem: a personal knowledge memory.

    Feed it documents (and soon chats and lectures), then ask it questions and get
    answers with citations you can follow. Everything stays on this machine.

    \b
    Exit codes: 0 done; 1 some inputs failed (the rest was done);
    2 bad usage; 3 nothing done (bad config, memory busy, index server down).
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--prune", is_flag=True, help="Forget files under PATHS that no longer exist.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--retranscribe", is_flag=True, help="Transcribe audio again even if a transcript exists."
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="NAME",
    callback=_names,
    help="Tag every file found, unchanged ones too (repeatable); "
    "`mem distill --domain NAME` learns from the material tagged NAME.",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    prune: bool,
    as_json: bool,
    quiet: bool,
    retranscribe: bool,
    tags: tuple[str, ...],
):
    """Add files or folders (recursively) to memory.

    Documents: .md .txt .html .docx .pdf and plain text in any encoding. Chat logs,
    recognised by content: ChatGPT exports (conversations.json or the .zip), Obsidian notes
    from nexus-ai-chat-importer, Telegram result.json, WhatsApp .txt, JSONL. Audio
    (.mp3 .wav .m4a .ogg .opus .flac .webm) and video (.mp4 .mkv .mov) are transcribed with
    faster-whisper, once per recording, and cited by time (12:05–12:41).

    Unchanged files are skipped, changed files replace their old chunks. A file that
    cannot be read is reported with the reason and the rest goes on; the exit code is 1.
    """
    memory = _open_memory(ctx)
    from mem.ingest.whisper_model import WhisperModelError
    from mem.memory.lock import LockTimeout

    try:
        report = memory.ingest(
            paths, prune=prune, progress=not quiet, retranscribe=retranscribe, tags=tags
        )
    except (LockTimeout, WhisperModelError) as exc:
        raise Fatal(str(exc)) from exc
    finally:
        memory.close()
    for path, reason in report.failed:
        click.echo(f"mem: cannot ingest {_shown(path)}: {_shown(reason)}", err=True)
    if as_json:
        _print_json(report.to_json())
    else:
        click.echo(
            f"{len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, "
            f"{len(report.failed)} failed ({report.chunks_added} chunks) "
            f"in {report.seconds:.1f} s" + (f"; tagged {', '.join(report.tags)}" if tags else "")
        )
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


def _llm_options(command):
    """The options `ask` and `chat` share: which model answers, and whether it is remembered."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(list(BACKENDS)),
            default=None,
            help="Override [llm] backend: "
            + "; ".join(f"{name}: {choice.help}" for name, choice in BACKENDS.items())
            + ".",
        ),
        click.option("--model", default=None, help="Override [llm] model (name, .gguf, folder)."),
        click.option(
            "--adapter",
            default=None,
            metavar="PATH|current",
            help="Answer with a peft LoRA adapter (`current`: the core-self adapter).",
        ),
        click.option(
            "--domain",
            "domains",
            multiple=True,
            metavar="NAME",
            callback=_names,
            help="Stack the current NAME domain adapter on the current core-self adapter "
            "(repeatable; implies --adapter current, which is the only --adapter it takes).",
        ),
        click.option("--no-remember", is_flag=True, help="Do not store this exchange in memory."),
        click.option(
            "--max-tokens",
            type=click.IntRange(1, 32768),
            default=None,
            help="Override [llm] max_tokens (answer length).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _ask_settings(backend, model, adapter, domains, no_remember, max_tokens):
    from mem.memory.answering.ask import AskSettings

    remember = False if no_remember else None
    return AskSettings(backend, model, adapter, remember, max_tokens, domains=domains)


def _print_sources(answer) -> None:
    for s in answer.sources:
        where = f" ({s.locator})" if s.locator else ""
        mark = "  cited" if s.rank in answer.cited else ""
        click.echo(
            click.style(f"[{s.rank}] {s.source}{where}", bold=True) + f"  {s.score:.3f}{mark}"
        )
        snippet = " ".join(s.text.split())
        click.echo(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    if answer.invalid_citations:
        numbers = ", ".join(f"[{n}]" for n in answer.invalid_citations)
        click.echo(f"mem: removed citations of sources that do not exist: {numbers}", err=True)
    if answer.answer and answer.model_cited and answer.cited != answer.model_cited:
        wrote = ", ".join(f"[{n}]" for n in answer.model_cited)
        click.echo(
            f"mem: citations checked against the sources' words: the answer cites "
            f"{', '.join(f'[{n}]' for n in answer.cited)} (the model wrote {wrote})",
            err=True,
        )


def _stream_to_stdout(piece: str) -> None:
    click.echo(piece, nl=False)
    sys.stdout.flush()


def _end_stream(answer) -> None:
    """After a streamed answer: the citations mem added (the default prompt does not ask the
    model for them, so the streamed text has none), then a blank line."""
    from mem.memory.answering.prompting import added_citations

    if answer.answer is None:
        return
    click.echo(added_citations(answer.cited, answer.model_cited) + "\n")


@cli.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(1, 100), default=None, help="How many sources.")
@click.option("--no-llm", is_flag=True, help="Retrieval only: no generated answer.")
@_llm_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (see docs/ASK_JSON.md)."
)
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    k: int | None,
    no_llm: bool,
    backend: str | None,
    model: str | None,
    adapter: str | None,
    domains: tuple[str, ...],
    no_remember: bool,
    max_tokens: int | None,
    as_json: bool,
) -> None:
    """Ask memory a question; answers cite their sources as [1], [2]…

    The answer streams as it is written, then the numbered sources follow. The exchange is
    remembered (a conversation "mem ask DATE"), so later questions can find it.
    """
    from mem.memory.answering.llm import LLMError

    memory = _open_memory(ctx)
    settings = _ask_settings(backend, model, adapter, domains, no_remember, max_tokens)
    try:
        answer = memory.ask(
            question,
            k=k,
            llm=not no_llm,
            settings=settings,
            on_token=None if as_json else _stream_to_stdout,
        )
    except LLMError as exc:
        raise Fatal(str(exc)) from exc
    finally:
        memory.close()
    if as_json:
        _print_json(answer.to_json())
        return
    _end_stream(answer)
    if answer.answer is None and not answer.sources:
        click.echo("Nothing in memory matches that question.")
    _print_sources(answer)


@cli.command()
@click.option("-k", "k", type=click.IntRange(1, 100), default=None, help="Sources per turn.")
@_llm_options
@click.pass_context
def chat(
    ctx: click.Context,
    k: int | None,
    backend: str | None,
    model: str | None,
    adapter: str | None,
    domains: tuple[str, ...],
    no_remember: bool,
    max_tokens: int | None,
) -> None:
    """Talk with memory: each line is a question; earlier turns stay in context.

    Reads questions from stdin (a terminal or a pipe) until EOF or "exit". Every turn
    retrieves its own sources; the whole session is stored as one conversation.
    """
    from mem.memory.answering.llm import LLMError

    memory = _open_memory(ctx)
    interactive = sys.stdin.isatty()
    try:
        settings = _ask_settings(backend, model, adapter, domains, no_remember, max_tokens)
        session = memory.chat(settings, k=k)
        while True:
            if interactive:
                click.echo(click.style("you> ", bold=True), nl=False)
            line = sys.stdin.readline()
            question = line.strip()
            if not line or question.lower() in ("exit", "quit", "/exit"):
                break
            if not question:
                continue
            click.echo(click.style("mem> ", bold=True), nl=False)
            answer = session.ask(question, on_token=_stream_to_stdout)
            _end_stream(answer)
            _print_sources(answer)
            click.echo()
    except LLMError as exc:
        raise Fatal(str(exc)) from exc
    finally:
        memory.close()
    if session.history and session.answerer.remembers:
        click.echo(f"mem: conversation stored as {session.conversation_id}", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Where memory lives, what it holds, which models it uses."""
    with _open_memory(ctx) as memory:
        info = memory.status()
    if as_json:
        _print_json(info)
        return
    click.echo(f"home:        {info['home']}")
    click.echo(f"documents:   {info['documents']}  chunks: {info['chunks']}")
    click.echo(f"chats:       {info['conversations']} conversations, {info['turns']} turns")
    sync = "in sync" if info["index_in_sync"] else "OUT OF SYNC (run `mem doctor` to repair)"
    click.echo(f"index:       {info['index']['vectors']} vectors, {sync}")
    click.echo(f"embedding:   {info['embedding_model']}")
    click.echo(f"llm:         {info['llm']['backend']} / {info['llm']['model']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List what has been ingested."""
    with _open_memory(ctx) as memory:
        documents = memory.documents()
    if as_json:
        _print_json(
            [
                {
                    "source": d.source,
                    "kind": d.kind,
                    "title": d.title,
                    "chunks": d.n_chunks,
                    "size": d.size,
                    "content_hash": d.content_hash,
                    "ingested_at": d.ingested_at,
                    "tags": list(d.tags),
                }
                for d in documents
            ]
        )
        return
    for d in documents:
        tags = f"  [{', '.join(d.tags)}]" if d.tags else ""
        click.echo(f"{d.kind:9} {d.n_chunks:5} chunks  {d.source}{tags}")
    click.echo(f"{len(documents)} sources")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only check; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.pass_context
def doctor(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Check that the corpus and every index agree, and repair what does not.

    Checks config.toml, SQLite integrity, and that Chroma (chunk and sentence vectors) and
    the lexical index hold exactly the corpus's chunks, once each. Repairs delete orphans
    and re-index what is missing. Exit 0 when healthy or repaired, 1 when something is
    still wrong (or, with --dry-run, when something would need repair).
    """
    from mem.memory.lock import LockTimeout
    from mem.memory.operations.doctor import run_doctor

    try:
        report = run_doctor(ctx.obj["home"], dry_run=dry_run)
    except LockTimeout as exc:
        raise Fatal(str(exc)) from exc
    if as_json:
        _print_json(report.to_json())
    else:
        click.echo(f"config: {report.config}")
        click.echo(f"vectors: {report.vectors}")
        for name, state in report.sqlite.items():
            click.echo(f"sqlite {name}: {state}")
        if report.before is not None:
            problems = report.before.problems()
            if report.before.vectors_count_mismatch:
                click.echo(f"chroma count off by {report.before.vectors_count_mismatch}")
            if report.before.lexical_stale_counts:
                click.echo(f"lexical counts off: {report.before.lexical_stale_counts}")
            for name, ids in problems.items():
                click.echo(f"{name.replace('_', ' ')}: {len(ids)}")
            if report.before.ok:
                click.echo(f"index: {report.before.corpus} chunks, all indexes agree")
        for action in report.actions:
            click.echo(f"repaired: {action}")
        for problem in report.unrepaired:
            click.echo(f"NOT repaired: {problem}")
    sys.exit(EXIT_OK if report.ok else EXIT_PARTIAL)


@cli.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--no-index", is_flag=True, help="Leave out Chroma's files (restore rebuilds them).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.pass_context
def backup(ctx: click.Context, out: str, no_index: bool, as_json: bool) -> None:
    """Write a consistent backup of this memory into the new folder OUT.

    SQLite snapshots (WAL-safe) of the corpus, lexical index and embedding cache, Chroma's
    files, config, adapters and datasets, with a manifest of counts and checksums.
    """
    from mem.memory.lock import LockTimeout
    from mem.memory.operations.backup import BackupError
    from mem.memory.operations.backup import backup as run_backup

    try:
        report = run_backup(ctx.obj["home"], out, index=not no_index)
    except (BackupError, LockTimeout) as exc:
        raise Fatal(str(exc)) from exc
    if as_json:
        _print_json(report.to_json())
        return
    counts = report.manifest["counts"]
    click.echo(
        f"backed up {counts['documents']} documents, {counts['chunks']} chunks: "
        f"{report.files} files, {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s -> {out}"
    )


@cli.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Replace the memory in a non-empty home.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.pass_context
def restore(ctx: click.Context, source: str, force: bool, as_json: bool) -> None:
    """Restore a backup folder SOURCE into the memory home (--home).

    Checksums are verified first; afterwards the corpus and indexes are checked to agree
    (and rebuilt from the corpus when the backup left the index out).
    """
    from mem.memory.lock import LockTimeout
    from mem.memory.operations.backup import BackupError
    from mem.memory.operations.backup import restore as run_restore

    try:
        report = run_restore(source, ctx.obj["home"], force=force)
    except (BackupError, LockTimeout) as exc:
        raise Fatal(str(exc)) from exc
    if as_json:
        _print_json(report.to_json())
        return
    how = "index rebuilt" if report.rebuilt_index else "index copied"
    if report.index_server:
        how = f"index on {report.index_server}, checked"
    click.echo(
        f"restored {report.counts['documents']} documents, {report.counts['chunks']} chunks "
        f"into {report.home} ({how}) in {report.seconds:.1f} s"
    )


@cli.group("index")
def index_group() -> None:
    """Move the vectors between this home's embedded Chroma and a Chroma server.

    \b
    mem index push   embedded (<home>/chroma) -> the server ([index] chroma_url)
    mem index pull   the server -> embedded

    Stored vectors are copied, nothing is embedded again; a rerun copies only what is
    missing, so an interrupted copy just continues. Then `mem doctor` checks the result.
    """


def _transfer(ctx: click.Context, direction: str, url, as_json: bool, quiet: bool) -> None:
    from mem.memory.config import ConfigError
    from mem.memory.lock import LockTimeout
    from mem.memory.operations.migrating import MigrationError, transfer

    with _fatal_on(MigrationError, LockTimeout, ConfigError):
        report = transfer(ctx.obj["home"], direction, url, progress=not quiet)
    if as_json:
        _print_json(report.to_json())
    else:
        click.echo(
            f"{direction}: {report.total('copied')} vectors copied, "
            f"{report.total('skipped')} already there, {report.total('removed')} removed, "
            f"{report.source} -> {report.target} in {report.seconds:.1f} s"
        )
    if not report.verified:
        click.echo("mem: counts differ after the copy; run it again", err=True)
        sys.exit(EXIT_PARTIAL)


_URL = click.option("--url", default=None, help="The server (default: [index] chroma_url).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
_QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


@index_group.command("push")
@_URL
@_JSON
@_QUIET
@click.pass_context
def index_push(ctx: click.Context, url, as_json: bool, quiet: bool) -> None:
    """Copy the embedded vectors to the Chroma server (then this home can use it)."""
    _transfer(ctx, "push", url, as_json, quiet)


@index_group.command("pull")
@_URL
@_JSON
@_QUIET
@click.pass_context
def index_pull(ctx: click.Context, url, as_json: bool, quiet: bool) -> None:
    """Copy this home's vectors from the Chroma server into <home>/chroma."""
    _transfer(ctx, "pull", url, as_json, quiet)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--srt", "as_srt", is_flag=True, help="Print SubRip subtitles.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (language, segments).")
@click.pass_context
def transcript(ctx: click.Context, file: str, as_srt: bool, as_json: bool) -> None:
    """Print the transcript of an ingested audio or video FILE, with times."""
    memory = _open_memory(ctx)
    try:
        found = memory.transcript(file)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from exc
    finally:
        memory.close()
    from mem.ingest.audio import to_srt
    from mem.ingest.transcripts import format_timestamp

    if as_json:
        _print_json(
            {
                "file": file,
                "language": found.language,
                "language_probability": found.language_probability,
                "duration": found.duration,
                "model": found.model,
                "segments": [
                    {"start": s.start, "end": s.end, "text": s.text} for s in found.segments
                ],
            }
        )
    elif as_srt:
        click.echo(to_srt(found), nl=False)
    else:
        for s in found.segments:
            click.echo(f"[{format_timestamp(s.start)}–{format_timestamp(s.end)}] {s.text}")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def conversations(ctx: click.Context, as_json: bool) -> None:
    """List imported conversations (ChatGPT, Telegram, WhatsApp, Obsidian, JSONL)."""
    if ctx.invoked_subcommand:
        return
    with _open_memory(ctx) as memory:
        rows = memory.conversations()
    if as_json:
        _print_json([c.to_json() for c in rows])
        return
    for c in rows:
        created = (c.created or "")[:10]
        click.echo(f"{c.conversation_id[:12]}  {created:10}  {c.turns:4} turns  {c.title}")
    click.echo(f"{len(rows)} conversations")


@conversations.command("show")
@click.argument("conversation_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def conversations_show(ctx: click.Context, conversation_id: str, as_json: bool) -> None:
    """Print one conversation, turn by turn (an id prefix is enough)."""
    memory = _open_memory(ctx)
    try:
        info, turns = memory.conversation(conversation_id)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from exc
    finally:
        memory.close()
    if as_json:
        _print_json({**info.to_json(), "turns": [t.to_json() for t in turns]})
        return
    click.echo(click.style(info.title, bold=True) + f"  ({info.source_format}, {info.source})")
    for t in turns:
        branch = f" [branch {t.branch}]" if t.branch else ""
        when = f"  {t.timestamp}" if t.timestamp else ""
        click.echo(click.style(f"\n#{t.index + 1} {t.speaker or t.role}{branch}{when}", bold=True))
        click.echo(t.text)


@cli.group()
def schedule() -> None:
    """The nightly job: score what is new, distill when enough has arrived.

    \b
    mem schedule start      run the scheduler in the foreground (cron from config.toml)
    mem schedule run-now    run the job once, now
    mem schedule status     next run and the last runs
    mem schedule install    a systemd user timer or crontab line instead
    """


def _setup_job_logging(home) -> None:
    import logging

    log_dir = home / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    handlers = [logging.StreamHandler(sys.stderr), logging.FileHandler(log_dir / "nightly.log")]
    fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=handlers, force=True)


@schedule.command("start")
@click.pass_context
def schedule_start(ctx: click.Context) -> None:
    """Run the scheduler in the foreground until Ctrl-C.

    A run missed while the machine slept (or while this was not running) happens once
    when it wakes up, never several times.
    """
    from mem.memory.schedule.scheduler import run_forever

    memory = _open_memory(ctx)
    _setup_job_logging(memory.home)
    cron = memory.config.schedule.cron
    memory.close()
    try:
        run_forever(memory.home, cron)
    except ValueError as exc:
        raise Fatal(str(exc)) from exc


@schedule.command("run-now")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.pass_context
def schedule_run_now(ctx: click.Context, as_json: bool) -> None:
    """Run the nightly job once, now (exit 1 if it failed, 0 if done or skipped)."""
    from mem.memory.schedule.nightly import run_nightly

    with _open_memory(ctx) as memory:
        _setup_job_logging(memory.home)
        result = run_nightly(memory)
    if as_json:
        _print_json(result.to_json())
    else:
        click.echo(f"run {result.run_id}: {result.outcome}")
        for name, value in result.detail.items():
            click.echo(f"  {name}: {value}")
    if result.outcome == "failed":
        sys.exit(EXIT_PARTIAL)


@schedule.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.option("--last", default=5, show_default=True, help="How many past runs to show.")
@click.pass_context
def schedule_status(ctx: click.Context, as_json: bool, last: int) -> None:
    """When the job runs next and how its last runs went."""
    from mem.memory.schedule.scheduler import next_run_time

    with _open_memory(ctx) as memory:
        nxt = next_run_time(memory.home)
        data = {
            "cron": memory.config.schedule.cron,
            "next_run": nxt.isoformat() if nxt else None,
            "runs": [r.to_json() for r in memory.corpus.runs("nightly", limit=last)],
        }
    if as_json:
        _print_json(data)
        return
    click.echo(f"cron: {data['cron']}")
    click.echo(f"next run: {data['next_run'] or 'not scheduled (run `mem schedule start`)'}")
    for run in data["runs"]:
        click.echo(f"  #{run['run_id']} {run['started_at']}  {run['outcome']}  {run['detail']}")


@schedule.command("install")
@click.option("--write", is_flag=True, help="Write the systemd user units (else just print).")
@click.pass_context
def schedule_install(ctx: click.Context, write: bool) -> None:
    """Print (or write) a systemd user timer and a crontab line that run the job."""
    from mem.memory.schedule.scheduler import install_instructions, write_systemd_units

    with _open_memory(ctx) as memory:
        home, cron = memory.home, memory.config.schedule.cron
    texts = install_instructions(home, cron)
    if write:
        try:
            paths = write_systemd_units(home, cron)
        except ValueError as exc:
            raise Fatal(str(exc)) from exc
        for path in paths:
            click.echo(f"wrote {path}")
        click.echo(
            "enable with: systemctl --user daemon-reload && "
            "systemctl --user enable --now mem-nightly.timer"
        )
        return
    if texts["systemd_timer"]:
        click.echo("# ~/.config/systemd/user/mem-nightly.service")
        click.echo(texts["systemd_service"])
        click.echo("# ~/.config/systemd/user/mem-nightly.timer")
        click.echo(texts["systemd_timer"])
    click.echo("# or a crontab line (crontab -e):")
    click.echo(texts["crontab"])


_SINCE = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


def _since(value) -> str | None:
    """A click datetime -> the corpus's UTC stamp format (a bare date compares as its start)."""
    if value is None:
        return None
    if value.hour or value.minute or value.second:
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{value:%Y-%m-%d}"


@cli.command()
@click.option("--since", type=_SINCE, default=None, help="Items ingested on/after DATE (UTC).")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True, help="How many.")
@click.option("--min-novelty", type=float, default=None, help="Override [distill] threshold.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def novelty(ctx: click.Context, since, top: int, min_novelty: float | None, as_json: bool) -> None:
    """Score what is new (since the last dataset build) and show what would be distilled, and why.

    novelty = 1 - the highest cosine similarity to earlier memory outside the item's own
    conversation/document; near-duplicates (MinHash) and boilerplate score low.
    """
    from mem.memory.lock import LockTimeout

    with _open_memory(ctx) as memory, _fatal_on(LockTimeout):
        report = memory.novelty(_since(since), top, min_novelty)
    if as_json:
        _print_json(report.to_json())
        return
    for n, item in enumerate(report.items, start=1):
        mark = "+" if item["selected"] else "-"
        where = f"«{item['title']}» {item['locator']}".strip()
        click.echo(
            click.style(f"{n:3}. {mark} novelty {item['novelty']:.3f}", bold=True)
            + f"  importance {item['importance']:.2f}  {item['reason']}  {where}"
        )
        if item["nearest"]:
            near = item["nearest"]
            near_where = near["locator"] or near["title"]
            click.echo(f"      nearest: {near_where} ({near['similarity']:.3f})")
        snippet = " ".join(item["text"].split())
        click.echo(f"      {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
    skipped = ", ".join(f"{why} {n}" for why, n in sorted(report.skipped.items())) or "none"
    click.echo(
        f"{report.total} new items: {report.selected} would be distilled "
        f"(+{report.replay} replayed from older memory); skipped: {skipped}"
    )


@cli.command("export-dataset")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(DATASET_FORMATS)),
    default="alpaca",
    show_default=True,
    help="; ".join(f"{name}: {f.help}" for name, f in DATASET_FORMATS.items()) + ".",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--since", type=_SINCE, default=None, help="Items ingested on/after DATE (UTC).")
@click.option("--min-novelty", type=float, default=None, help="Override [distill] threshold.")
@click.option(
    "--tag",
    default=None,
    metavar="NAME",
    callback=_names,
    help="Only material of files ingested with --tag NAME (a domain's dataset).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def export_dataset(
    ctx: click.Context,
    fmt: str,
    out: str,
    since,
    min_novelty: float | None,
    tag: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Build an SFT dataset from what is new (plus replay) and write it for training tools.

    Writes <name>_train.jsonl, <name>_validation.jsonl, a dataset_info.json entry
    LLaMA-Factory reads as is, manifest.json and heldout_questions.jsonl into OUT; the
    built set is also kept under the memory home's datasets/ for the LoRA stage.
    """
    from mem.memory.lock import LockTimeout

    with _open_memory(ctx) as memory, _fatal_on(LockTimeout, ValueError):
        result = memory.export_dataset(
            fmt, out, _since(since), min_novelty, progress=not quiet, tag=tag
        )
    if as_json:
        _print_json(result)
        return
    c = result["counts"]
    click.echo(
        f"dataset {result['dataset_id']}: {c['items']} chunks ({c['replay_items']} replayed) -> "
        f"{c['train']} train, {c['validation']} validation, "
        f"{c['heldout_questions']} held-out questions ({fmt}) in {result['out']}"
    )


def _adapter_errors() -> tuple[type[Exception], ...]:
    from mem.adapters.base_model import BaseModelError
    from mem.adapters.data import DatasetError
    from mem.adapters.export import ExportError
    from mem.adapters.registry import RegistryError
    from mem.memory.lock import Busy, LockTimeout

    return (BaseModelError, DatasetError, ExportError, RegistryError, Busy, LockTimeout, ValueError)


@cli.command()
@click.option(
    "--dataset",
    default="new",
    show_default=True,
    help='"new" builds one from what is new in memory; "latest", a dataset id or a folder.',
)
@click.option("--steps", type=click.IntRange(1), default=None, help="Train exactly N steps.")
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=None, help="Epochs.")
@click.option(
    "--domain",
    default=None,
    metavar="NAME",
    callback=_names,
    help="Train the domain adapter NAME beside core-self; a new dataset is built from the "
    "material ingested with --tag NAME.",
)
@click.option("--resume", is_flag=True, help="Continue the last interrupted run on this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def distill(
    ctx: click.Context,
    dataset: str,
    steps: int | None,
    epochs: float | None,
    domain: str | None,
    resume: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train a new LoRA adapter on the base model ([distill] base_model; "auto": the 1.5B
    answer model where the CPU has bf16 or on CUDA, else the 0.5B), evaluate it and promote it
    only if it beats the current one ([lora] primary_metric) without forgetting general
    knowledge in either language ([lora] max_control_drop).

    Every version is kept under <home>/adapters/<name>/vNNNN with its manifest; the run's
    loss/lr log, plots and report.md go to <home>/runs/. On CPU: LoRA over a bf16 base where
    the CPU has native bf16, else fp32; on CUDA: QLoRA.

    \b
    Exit codes: 0 trained and promoted; 1 trained and registered but not promoted
    (not better; `current` unchanged); 3 nothing trained (bad dataset, config, busy).
    """
    with _open_memory(ctx) as memory, _fatal_on(*_adapter_errors()):
        result = memory.distill(dataset, steps, epochs, domain, resume, progress=not quiet)
    if as_json:
        _print_json(result.to_json())
    else:
        verdict = "promoted to current" if result.promoted else "registered, not promoted"
        click.echo(f"{result.name}/{result.version}: {verdict} ({result.reason})")
        for arm, m in result.metrics.items():
            shown = {k: m.get(k) for k in ("val_loss", "token_f1", "exact_match") if k in m}
            click.echo(f"  {arm:8} " + "  ".join(f"{k} {v}" for k, v in shown.items()))
        click.echo(f"report: {result.run_dir / 'report.md'}")
    sys.exit(EXIT_OK if result.promoted else EXIT_PARTIAL)


@cli.group()
@click.option("--name", default=None, help="Adapter name (default core-self; or a domain).")
@click.pass_context
def adapters(ctx: click.Context, name: str | None) -> None:
    """The versioned adapters: list, show, use, rollback, export."""
    ctx.obj["adapter_name"] = name


def _registry(ctx: click.Context):
    with _open_memory(ctx) as memory, _fatal_on(*_adapter_errors()):
        return memory.adapters(ctx.obj.get("adapter_name"))


@adapters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def adapters_list(ctx: click.Context, as_json: bool) -> None:
    """Every version, oldest first; * marks current."""
    versions = [v.to_json() for v in _registry(ctx).list()]
    if as_json:
        _print_json(versions)
        return
    for v in versions:
        metric = v["primary_metric"] or "token_f1"
        click.echo(
            f"{'*' if v['current'] else ' '} {v['version']}  {v['status'] or '':9}"
            f"{v['created_at'] or ''}  dataset {v['dataset']}  {metric} {v['metrics'].get(metric)}"
        )
    if not versions:
        click.echo("no adapters yet: run `mem distill`")


@adapters.command("show")
@click.argument("version", default="current")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
def adapters_show(ctx: click.Context, version: str, as_json: bool) -> None:
    """The manifest of VERSION (default: current)."""
    with _fatal_on(*_adapter_errors()):
        found = _registry(ctx).get(version)
    data = {**found.manifest, "path": str(found.path), "current": found.current}
    if as_json:
        _print_json(data)
        return
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@adapters.command("use")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def adapters_use(ctx: click.Context, version: str, as_json: bool) -> None:
    """Make VERSION current (the replaced one can be rolled back to)."""
    with _fatal_on(*_adapter_errors()):
        found = _registry(ctx).use(version)
    if as_json:
        _print_json({"current": found.version})
    else:
        rejected = found.manifest.get("status") == "rejected"
        note = " (it was rejected by evaluation)" if rejected else ""
        click.echo(f"current: {found.label}{note}")


@adapters.command("rollback")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def adapters_rollback(ctx: click.Context, as_json: bool) -> None:
    """Back to the previously current version (or its parent; none = the base model)."""
    with _fatal_on(*_adapter_errors()):
        current = _registry(ctx).rollback()
    if as_json:
        _print_json({"current": current})
    else:
        click.echo(f"current: {current or 'none (the base model alone)'}")


@adapters.command("export")
@click.argument("version", default="current")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(ADAPTER_FORMATS)),
    default="peft",
    show_default=True,
    help="; ".join(f"{name}: {f.help}" for name, f in ADAPTER_FORMATS.items()) + ".",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def adapters_export(ctx: click.Context, version: str, fmt: str, out: str, as_json: bool) -> None:
    """Write VERSION as a peft folder, a merged model, an Ollama Modelfile or a vLLM command."""
    with _open_memory(ctx) as memory, _fatal_on(*_adapter_errors()):
        exported = memory.export_adapter(version, fmt, out, ctx.obj.get("adapter_name"))
    if as_json:
        _print_json(exported.to_json())
        return
    click.echo(f"{fmt}: {exported.path} ({len(exported.files)} files)")
    if exported.command:
        click.echo(exported.command)


def _serve_config(ctx: click.Context):
    with _open_memory(ctx) as memory:
        return memory.config.serve


@cli.command()
@click.option(
    "--host", default=None, help="Address to listen on (default [serve] host, 127.0.0.1)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port ([serve] port).")
@click.option(
    "--api-key-env",
    default=None,
    metavar="NAME",
    help="Environment variable holding the API key ([serve] api_key_env, MEM_API_KEY); "
    "required for any address but loopback.",
)
@click.option(
    "--watch",
    "watch",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Also ingest what changes in this folder while serving (repeatable).",
)
@click.pass_context
def serve(ctx: click.Context, host, port, api_key_env, watch) -> None:
    """Serve memory to other programs until Ctrl-C: an OpenAI-compatible API
    (/v1/chat/completions, /v1/models), /v1/search, /v1/ingest, /v1/status, and the MCP
    tools over Streamable HTTP at /mcp. See README ("mem serve")."""
    from mem.serve.run import ServeError
    from mem.serve.run import serve as run_serve

    c = _serve_config(ctx)
    with _fatal_on(ServeError, OSError):
        run_serve(
            ctx.obj["home"],
            host or c.host,
            port or c.port,
            c.api_key_env if api_key_env is None else api_key_env,
            watch or tuple(c.watch),
            c.debounce_ms,
        )


@cli.command()
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """MCP server over stdin/stdout, for desktop clients (Claude Desktop, editors): tools
    search_memory, ask_memory, remember, get_source."""
    from mem.serve.run import mcp_stdio

    _serve_config(ctx)  # a bad config.toml is one clear line, not a protocol error
    mcp_stdio(ctx.obj["home"])


@cli.command()
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False))
@click.pass_context
def watch(ctx: click.Context, folders: tuple[str, ...]) -> None:
    """Ingest FOLDERS now, then again whenever files in them are created, changed or
    deleted (deleted ones are forgotten), until Ctrl-C. Default: [serve] watch."""
    from mem.serve.run import ServeError, watch_foreground

    c = _serve_config(ctx)
    folders = folders or tuple(c.watch)
    if not folders:
        raise click.UsageError("name the folders to watch (or set [serve] watch)")
    with _fatal_on(ServeError):
        watch_foreground(ctx.obj["home"], folders, c.debounce_ms)


def main() -> None:
    cli(prog_name="mem")


if __name__ == "__main__":
    main()

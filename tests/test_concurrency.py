"""Two ingests and a stream of asks on one memory home at the same time.

Writers serialise on the writer lock (the second says on stderr that it waits), readers never
see a "database is locked" error or a half-written index, and the end state agrees exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import spawn

pytestmark = pytest.mark.model

FACTS = {
    "a/lighthouse.md": "# Маяк\n\nСмотритель маяка на острове Сескар зажигал лампу ровно в "
    "семь вечера. Керосин привозили раз в месяц на барже.\n",
    "a/herring.md": "# Herring\n\nThe quartermaster counted forty-two barrels of salted "
    "herring in the hold. Three of them burst during the storm.\n",
    "b/kiln.md": "# Kiln\n\nA kiln for stoneware must reach about 1250 degrees Celsius. "
    "Earthenware fires at a much lower temperature.\n",
    "b/bees.md": "# Bees\n\nThe beekeeper moved twelve hives to the heather moor in August. "
    "Heather honey is thick and sets like jelly.\n",
}

# Asks in a loop, in one process (a fresh Memory per ask, as separate `mem ask` runs would
# have), until the stop file appears; prints how many ran and every failure.
ASKER = """
import json, sys, traceback
from pathlib import Path
from click.testing import CliRunner
from mem.cli import cli
home, stop = sys.argv[1], Path(sys.argv[2])
runs, failures = 0, []
while not stop.exists() or runs < 3:
    result = CliRunner().invoke(cli, ["--home", home, "ask", "heather honey kiln", "--no-llm",
                                      "--json"])
    runs += 1
    if result.exit_code != 0:
        failures.append(result.output[-500:] + "".join(traceback.format_exception(
            *result.exc_info)) if result.exc_info else result.output)
    else:
        json.loads(result.stdout)
print(json.dumps({"runs": runs, "failures": failures}))
"""


def test_two_ingests_and_asks_at_once(tmp_path: Path) -> None:
    from mem.memory import Memory
    from mem.memory.operations.doctor import check_agreement

    for name, text in FACTS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    home, stop = tmp_path / "home", tmp_path / "stop"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    mem = [sys.executable, "-m", "mem.cli", "--home", str(home)]
    # All three start on an empty home: they race to create corpus.db and Chroma too.
    asker = spawn(
        [sys.executable, "-c", ASKER, str(home), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    ingests = [
        spawn(
            [*mem, "ingest", str(tmp_path / part), "-q", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for part in ("a", "b")
    ]
    started = time.perf_counter()
    outputs = [p.communicate(timeout=300) for p in ingests]
    stop.touch()
    asked, asker_err = asker.communicate(timeout=300)
    print(f"two ingests + asks in {time.perf_counter() - started:.1f} s")

    for process, (out, err) in zip(ingests, outputs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err
        assert len(json.loads(out)["added"]) == 2
    waits = [err for _, err in outputs if "mem: waiting for mem ingest (pid" in err]
    assert len(waits) == 1, [err for _, err in outputs]  # exactly one waited, and said so
    assert asker.returncode == 0, asker_err
    asks = json.loads(asked)
    kinds = sorted({f.strip().splitlines()[-1][:300] for f in asks["failures"]})
    assert asks["failures"] == [] and asks["runs"] >= 3, (
        len(asks["failures"]),
        asks["runs"],
        kinds,
    )

    with Memory(home) as memory:
        assert check_agreement(memory).ok
        assert len(memory.corpus.documents()) == 4
        top = memory.retrieve("How hot must a stoneware kiln be?", k=1)[0]
        assert top.source.endswith("kiln.md")

"""The nightly job and its scheduler: real APScheduler, real SQLite job store, real locks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from processes import spawn

from mem.cli import cli
from mem.memory import Memory
from mem.memory.schedule.nightly import run_nightly
from mem.memory.schedule.scheduler import (
    JOB_ID,
    cron_trigger,
    install_instructions,
    next_run_time,
    open_scheduler,
)

HOLD_LOCK = """
import sys, time
from pathlib import Path
from mem.memory.lock import {func}
with {func}(Path(sys.argv[1]), {args}):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(home: Path, func: str, args: str, seconds: float) -> subprocess.Popen:
    """Another process holding one of the memory home's locks (for real, via fcntl)."""
    code = HOLD_LOCK.format(func=func, args=args)
    proc = spawn(
        [sys.executable, "-c", code, str(home), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _wait_for_runs(home: Path, count: int, timeout_s: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with Memory(home) as memory:
            runs = memory.corpus.runs("nightly")
        if len(runs) >= count and all(r.finished_at for r in runs):
            return runs
        time.sleep(0.2)
    raise AssertionError(f"expected {count} nightly runs within {timeout_s} s, got {len(runs)}")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_near_future_trigger_runs_the_job_once_and_records_it(home: Path) -> None:
    from apscheduler.triggers.date import DateTrigger

    scheduler = open_scheduler(
        home, DateTrigger(datetime.now().astimezone() + timedelta(seconds=1))
    )
    try:
        scheduler.resume()
        runs = _wait_for_runs(home, 1)
        time.sleep(1.5)  # nothing more may run
    finally:
        scheduler.shutdown(wait=True)
    runs = _wait_for_runs(home, 1)
    assert len(runs) == 1
    assert runs[0].outcome == "ok", runs[0]
    assert "novelty" in runs[0].detail and "distill" in runs[0].detail


def test_missed_runs_coalesce_into_one_on_wake(home: Path) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = open_scheduler(home, IntervalTrigger(minutes=1))
    try:
        # The machine "slept" through ten scheduled runs: the next run is 10 minutes ago,
        # and that is what the job store on disk says too.
        missed = datetime.now().astimezone() - timedelta(minutes=10)
        scheduler.modify_job(JOB_ID, next_run_time=missed)
        assert abs((next_run_time(home) - missed).total_seconds()) < 1
        scheduler.resume()  # wake up
        _wait_for_runs(home, 1)
        time.sleep(2.0)
        upcoming = scheduler.get_job(JOB_ID).next_run_time
    finally:
        scheduler.shutdown(wait=True)
    assert len(_wait_for_runs(home, 1)) == 1  # once, not ten times
    assert upcoming > datetime.now().astimezone()


def test_a_stored_job_is_kept_unless_its_trigger_changed(home: Path) -> None:
    first = open_scheduler(home, cron_trigger("0 3 * * *"))
    stored = first.get_job(JOB_ID).next_run_time
    first.shutdown()
    again = open_scheduler(home, cron_trigger("0 3 * * *"))
    kept = again.get_job(JOB_ID).next_run_time
    again.shutdown()
    changed = open_scheduler(home, cron_trigger("30 4 * * *"))
    replaced = changed.get_job(JOB_ID).next_run_time
    changed.shutdown()
    assert kept == stored
    assert (replaced.hour, replaced.minute) == (4, 30)


def test_a_second_job_is_refused_by_the_lock(home: Path) -> None:
    holder = _hold(home, "exclusive", '"job", "a test holding the job lock"', 30)
    try:
        result = CliRunner().invoke(cli, ["--home", str(home), "schedule", "run-now", "--json"])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["outcome"] == "skipped"
    assert "another job is running" in run["detail"]["reason"]
    assert "a test holding the job lock" in run["detail"]["reason"]


def test_the_job_skips_with_a_reason_while_an_ingest_holds_memory(home: Path) -> None:
    home.mkdir(parents=True)
    Memory(home).close()  # writes config.toml
    config = home / "config.toml"
    config.write_text(
        config.read_text().replace("lock_wait_s = 1800.0", "lock_wait_s = 0.5"), encoding="utf-8"
    )
    holder = _hold(home, "writer_lock", '"mem ingest (test)"', 30)
    try:
        with Memory(home) as memory:
            started = time.monotonic()
            result = run_nightly(memory)
            waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.outcome == "skipped"
    assert "busy" in result.detail["reason"]
    assert 0.4 < waited < 10


def test_a_failing_step_is_logged_and_changes_nothing(home: Path) -> None:
    def broken(memory: Memory) -> dict:
        raise RuntimeError("disk on fire")

    with Memory(home) as memory:
        before = memory.corpus.counts()
        result = run_nightly(memory, steps=[("novelty", broken), ("distill", broken)])
        after = memory.corpus.counts()
    assert result.outcome == "failed"
    assert result.detail["error"] == "novelty: RuntimeError: disk on fire"
    assert "distill" not in result.detail  # the job stopped at the failure
    assert {**before, "runs": before["runs"] + 1} == after


def test_status_shows_next_run_and_last_runs(home: Path) -> None:
    scheduler = open_scheduler(home, cron_trigger("0 3 * * *"))
    scheduler.shutdown()
    runner = CliRunner()
    assert runner.invoke(cli, ["--home", str(home), "schedule", "run-now"]).exit_code == 0
    result = runner.invoke(cli, ["--home", str(home), "schedule", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    next_run = datetime.fromisoformat(status["next_run"])
    assert (next_run.hour, next_run.minute) == (3, 0)
    assert next_run > datetime.now().astimezone()
    assert [r["outcome"] for r in status["runs"]] == ["ok"]


def test_install_gives_a_systemd_timer_and_a_crontab_line(home: Path, tmp_path: Path) -> None:
    texts = install_instructions(home, "30 4 * * *")
    assert "OnCalendar=*-*-* 04:30:00" in (texts["systemd_timer"] or "")
    assert "Persistent=true" in (texts["systemd_timer"] or "")
    assert f"--home {home} schedule run-now" in texts["systemd_service"]
    assert texts["crontab"].startswith("30 4 * * * ")
    assert install_instructions(home, "*/15 2-5 * * 1-5")["systemd_timer"] is None

    result = CliRunner().invoke(
        cli, ["--home", str(home), "schedule", "install", "--write"], env={"HOME": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    unit_dir = tmp_path / ".config" / "systemd" / "user"
    assert "OnCalendar=*-*-* 03:00:00" in (unit_dir / "mem-nightly.timer").read_text()


def test_a_bad_cron_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\[schedule\] cron"):
        cron_trigger("every night at three")

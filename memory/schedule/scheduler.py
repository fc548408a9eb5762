"""When the nightly job runs: APScheduler with a job store in the memory home.

The job lives in `<home>/schedule.db` (APScheduler's SQLAlchemy job store), so its next run
time survives restarts. Missed runs (the machine slept through 03:00, or the scheduler was
not running) coalesce into one run on wake, however late (`misfire_grace_time=None`), and
`max_instances=1` keeps a slow run from overlapping the next. People who prefer the OS
scheduler get a systemd user timer or a crontab line from `install_instructions`.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

JOB_ID = "nightly"
JOB_FUNC = "mem.memory.schedule.nightly:scheduled_run"


def _store_url(home: Path) -> str:
    return f"sqlite:///{home / 'schedule.db'}"


def cron_trigger(cron: str) -> Any:
    """A CronTrigger in local time from a crontab expression; ValueError names what is wrong."""
    from apscheduler.triggers.cron import CronTrigger
    from tzlocal import get_localzone

    try:
        return CronTrigger.from_crontab(cron, timezone=get_localzone())
    except ValueError as error:
        raise ValueError(
            f"[schedule] cron = {cron!r} is not a crontab expression: {error}"
        ) from None


def open_scheduler(home: Path, trigger: Any) -> Any:
    """A started but paused BackgroundScheduler holding the nightly job with `trigger`.

    An existing job with the same trigger is kept as stored, so a run it missed is still due;
    a changed trigger replaces it. Call `.resume()` to let it run, `.shutdown()` when done.
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from tzlocal import get_localzone

    home.mkdir(parents=True, exist_ok=True)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=_store_url(home))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=get_localzone(),
    )
    scheduler.start(paused=True)
    job = scheduler.get_job(JOB_ID)
    if job is None or str(job.trigger) != str(trigger) or tuple(job.args) != (str(home),):
        scheduler.add_job(
            JOB_FUNC,
            trigger=trigger,
            args=[str(home)],
            id=JOB_ID,
            name="mem nightly: novelty + distill",
            replace_existing=True,
        )
    return scheduler


def next_run_time(home: Path) -> datetime | None:
    """When the stored nightly job runs next (None if `mem schedule start` never ran)."""
    if not (home / "schedule.db").exists():
        return None
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    store = SQLAlchemyJobStore(url=_store_url(home))
    try:
        # Reading the next run time needs no scheduler: it is a column of the job table.
        return store.get_next_run_time()
    finally:
        store.shutdown()


def run_forever(home: Path, cron: str, stop: threading.Event | None = None) -> None:
    """Foreground scheduler: runs until Ctrl-C / SIGTERM (or `stop` is set)."""
    import signal

    stop = stop or threading.Event()
    scheduler = open_scheduler(home, cron_trigger(cron))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log = logging.getLogger("mem.nightly")
    log.info("scheduler running; next run %s", scheduler.get_job(JOB_ID).next_run_time)
    scheduler.resume()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)


def _mem_command() -> str:
    beside_python = Path(sys.executable).with_name("mem")
    return str(beside_python) if beside_python.exists() else (shutil.which("mem") or "mem")


def _on_calendar(cron: str) -> str | None:
    """systemd OnCalendar for the common "M H * * *" form; None for anything fancier."""
    parts = cron.split()
    if len(parts) == 5 and parts[2:] == ["*", "*", "*"] and all(p.isdigit() for p in parts[:2]):
        return f"*-*-* {int(parts[1]):02d}:{int(parts[0]):02d}:00"
    return None


def install_instructions(home: Path, cron: str) -> dict[str, str | None]:
    """Text of a systemd user service + timer and a crontab line that run the job."""
    run = f"{_mem_command()} --home {home} schedule run-now"
    log_file = home / "runs" / "nightly.log"
    calendar = _on_calendar(cron)
    service = (
        "[Unit]\nDescription=mem nightly job: novelty scoring and distillation\n\n"
        f"[Service]\nType=oneshot\nExecStart={run}\nNice=10\n"
    )
    timer = (
        (
            "[Unit]\nDescription=Run mem's nightly job\n\n"
            # Persistent: a run missed while the machine was off happens once at boot.
            f"[Timer]\nOnCalendar={calendar}\nPersistent=true\n\n"
            "[Install]\nWantedBy=timers.target\n"
        )
        if calendar
        else None
    )
    return {
        "systemd_service": service,
        "systemd_timer": timer,
        "crontab": f"{cron} {run} >> {log_file} 2>&1",
    }


def write_systemd_units(home: Path, cron: str, unit_dir: Path | None = None) -> list[Path]:
    """Write mem-nightly.service/.timer to ~/.config/systemd/user (or `unit_dir`)."""
    texts = install_instructions(home, cron)
    if texts["systemd_timer"] is None:
        raise ValueError(f"cron {cron!r} has no simple systemd equivalent; use the crontab line")
    unit_dir = unit_dir or Path.home() / ".config" / "systemd" / "user"
    unit_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, key in (("service", "systemd_service"), ("timer", "systemd_timer")):
        path = unit_dir / f"mem-nightly.{suffix}"
        path.write_text(texts[key] or "", encoding="utf-8")
        written.append(path)
    return written

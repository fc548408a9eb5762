"""The nightly job: score what is new, distill when enough has arrived, log the run.

The job is a list of named steps run in order under a job lock (one job at a time per memory
home). Each step returns a small dict for the run log. A step that fails stops the job, the
error goes to the log and the `runs` table, and nothing else changes: steps write their
results in one transaction each, and a new adapter only becomes current after evaluation.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mem.index.vectors import IndexUnavailable
from mem.memory.lock import Busy, LockTimeout, exclusive, writer_lock

if TYPE_CHECKING:
    from mem.memory.core import Memory

log = logging.getLogger("mem.nightly")

Step = Callable[["Memory"], dict]


@dataclass
class JobResult:
    run_id: int
    outcome: str  # "ok", "skipped" or "failed"
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "outcome": self.outcome, "detail": self.detail}


class SkipJob(Exception):
    """A step decided the job should stop here without it being a failure."""


def score_novelty(memory: Memory) -> dict:
    """Score the turns and chunks that arrived since the last scoring (writes the corpus)."""
    wait_s = memory.config.schedule.lock_wait_s
    try:
        with writer_lock(memory.home, "mem nightly job (novelty)", timeout_s=wait_s):
            return memory.score_novelty()
    except LockTimeout as busy:
        raise SkipJob(f"memory stayed busy (an ingest?): {busy}") from None


def distill_if_enough(memory: Memory) -> dict:
    """Train a new core-self adapter when enough new, novel material has arrived."""
    minimum = memory.config.schedule.min_new_items
    waiting = memory.distillable_count()
    if waiting < minimum:
        return {"skipped": f"{waiting} new items above the novelty threshold (minimum {minimum})"}
    # Training reads the built dataset, not the corpus: no writer lock, so ingest and ask go on.
    return memory.distill().to_json()


DEFAULT_STEPS: tuple[tuple[str, Step], ...] = (
    ("novelty", score_novelty),
    ("distill", distill_if_enough),
)


def run_nightly(memory: Memory, steps: Sequence[tuple[str, Step]] = DEFAULT_STEPS) -> JobResult:
    """Run the job once now; refuse (and log a skipped run) if another job holds the lock."""
    corpus = memory.corpus
    unavailable: IndexUnavailable | None = None
    try:
        with exclusive(memory.home, "job", "mem nightly job"):
            run_id = corpus.start_run("nightly")
            detail: dict = {}
            outcome = "ok"
            for name, step in steps:
                try:
                    detail[name] = step(memory)
                except SkipJob as reason:
                    outcome, detail["reason"] = "skipped", f"{name}: {reason}"
                    break
                except IndexUnavailable as error:  # no traceback: the run's log line says it
                    outcome, detail["error"], unavailable = "failed", f"{name}: {error}", error
                    break
                except Exception as error:  # the job must log, never crash the scheduler
                    outcome = "failed"
                    detail["error"] = f"{name}: {type(error).__name__}: {error}"
                    log.error("nightly job failed in %s:\n%s", name, traceback.format_exc())
                    break
            corpus.finish_run(run_id, outcome, detail)
    except Busy as holder:
        run_id = corpus.start_run("nightly")
        detail = {"reason": f"another job is running: {holder}"}
        corpus.finish_run(run_id, outcome := "skipped", detail)
    log.info("nightly run %d: %s %s", run_id, outcome, detail)
    if unavailable is not None:
        raise unavailable  # the caller says so (`mem schedule run-now`: exit code 3)
    return JobResult(run_id, outcome, detail)


def scheduled_run(home: str) -> None:
    """What the scheduler calls (by reference, so the persistent job store can name it)."""
    from mem.memory.core import Memory

    memory = Memory(home)
    try:
        run_nightly(memory)
    except IndexUnavailable:
        pass  # logged and recorded by run_nightly; the scheduler waits for the next night
    finally:
        memory.close()

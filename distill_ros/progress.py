"""One progress bar for a stage whose jobs run on many workers, and the same numbers on disk.

A job counts its own work with `report(n)` (episodes rolled out, env steps trained). In a
worker the counts are batched (at most one message per `REPORT_EVERY_S`) and sent to the
driver through the executor's sink (a process queue or a Ray queue), tagged with the job's
index, as the job's running total: a retried job starts again from zero without counting
twice. The driver's `StageProgress` draws one tqdm bar over all jobs and writes the same
numbers to `progress.json` in the run folder, which `distill_trainer` publishes on
``/diagnostics``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence, TextIO

from tqdm import tqdm

from distill_ros.atomic import atomic_write_json

log = logging.getLogger(__name__)
REPORT_EVERY_S = 0.5   # s, most frequent message from one job to the driver
WRITE_EVERY_S = 1.0    # s, most frequent rewrite of progress.json
PROGRESS_FILE = "progress.json"


class Sink(Protocol):
    """Where a job's `(job index, units done)` messages go: a queue or the driver itself."""

    def put(self, item: tuple[int, int]) -> Any:
        """Deliver one message."""


class _Reporter:
    """Counts one job's units and sends its running total at most every `every_s`."""

    def __init__(self, job: int, sink: Sink, every_s: float,
                 clock: Callable[[], float]) -> None:
        self.job, self.sink, self.every_s, self.clock = job, sink, every_s, clock
        self.done, self.sent, self.last = 0, 0, clock()

    def add(self, n: int) -> None:
        self.done += n
        if self.clock() - self.last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        if self.done != self.sent:
            self.sink.put((self.job, self.done))
            self.sent = self.done
        self.last = self.clock()


_reporter: Optional[_Reporter] = None


def report(n: int = 1) -> None:
    """Count `n` units of work of the job running here (nothing outside an executor's job)."""
    if _reporter is not None:
        _reporter.add(n)


def in_job() -> bool:
    """Whether an executor's job runs here (its counts go to the stage's one bar)."""
    return _reporter is not None


@contextlib.contextmanager
def reporting(job: int, sink: Optional[Sink], every_s: float = REPORT_EVERY_S,
              clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Send the `report` counts of job number `job` to `sink` while the block runs."""
    global _reporter
    if sink is None:
        yield
        return
    outer, _reporter = _reporter, _Reporter(job, sink, every_s, clock)
    try:
        yield
        _reporter.flush()
    finally:
        _reporter = outer


class StageProgress:
    """The driver's bar over every job of a stage; also written to `path` (progress.json).

    `units[i]` is how much work job `i` reports when it is done (its episodes or steps).
    Workers send running totals per job, so the bar never counts a retried job twice. The
    bar goes to `file` (default: stderr).
    """

    def __init__(self, stage: str, units: Sequence[int], unit: str,
                 path: Optional[Path] = None, clock: Callable[[], float] = time.monotonic,
                 file: Optional[TextIO] = None) -> None:
        self.stage, self.units, self.unit, self.path = stage, list(units), unit, path
        self.clock = clock
        self.done = [0] * len(self.units)
        self.finished: set[int] = set()
        self.executor, self.dashboard_url = "", ""
        self.started = self.written = clock()
        self.bar = tqdm(total=sum(self.units), desc=stage, unit=unit,
                        unit_scale=sum(self.units) >= 10_000,  # 40.0k steps, not 12.0 ep
                        file=file)

    def ran_on(self, executor: Any) -> None:
        """Name the executor that runs this stage's jobs, and Ray's dashboard once it is up."""
        self.executor = repr(executor)
        self.dashboard_url = getattr(executor, "dashboard_url", "")

    def put(self, item: tuple[int, int]) -> None:
        """Job `item[0]` has done `item[1]` units so far (a `Sink` for in-process jobs)."""
        job, done = item
        self._set(job, min(int(done), self.units[job]))

    def job_done(self, job: int) -> None:
        """Job `job` has returned: all of its units are done."""
        self.finished.add(job)
        self._set(job, self.units[job])

    def _set(self, job: int, done: int) -> None:
        if done > self.done[job]:
            self.bar.update(done - self.done[job])
            self.done[job] = done
        self.tick()

    def tick(self) -> None:
        """Rewrite progress.json if the last write is `WRITE_EVERY_S` old (the driver polls)."""
        if self.path is not None and self.clock() - self.written >= WRITE_EVERY_S:
            self.write()

    def snapshot(self) -> dict:
        """The numbers on the bar, as written to progress.json."""
        done, total = sum(self.done), sum(self.units)
        elapsed = self.clock() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        return {"stage": self.stage, "unit": self.unit, "done": done, "total": total,
                "jobs_done": len(self.finished), "jobs_total": len(self.units),
                "elapsed_s": round(elapsed, 2), "rate_per_s": round(rate, 3),
                "eta_s": round((total - done) / rate, 1) if rate > 0 else None,
                "executor": self.executor, "dashboard_url": self.dashboard_url}

    def write(self) -> None:
        """Rewrite progress.json (atomically) now."""
        if self.path is not None:
            atomic_write_json(self.path, self.snapshot())
            self.written = self.clock()

    def close(self) -> None:
        """Final numbers to disk, bar closed."""
        self.write()
        self.bar.close()

    def __enter__(self) -> "StageProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_progress(run_dir: Path) -> dict:
    """The last progress.json of a run folder ({} when there is none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


class StepsBar:
    """A tqdm-like `update(n)` that counts env steps with `report` (for SB3 callbacks)."""

    def update(self, n: int = 1) -> None:
        """Count `n` more units."""
        report(n)


def run_job(fn: Callable, job: Any, index: int = 0, sink: Optional[Sink] = None) -> Any:
    """Job number `index` in a worker that shares the cores (one torch thread), reporting."""
    _init_worker()
    with reporting(index, sink):
        return fn(job)


def _init_worker() -> None:
    """One torch thread per worker: the workers already use the cores."""
    try:
        import torch
    except ImportError:  # a job that needs no torch
        return
    torch.set_num_threads(1)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what is written to fd 1 meanwhile to fd 2.

    That is pybullet's C++ prints, and those of processes started inside (they inherit the
    descriptor), so a bench's stdout holds only the JSON it prints afterwards.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)

"""Executors run independent jobs (a shard to collect, a task to evaluate) and return results.

The interface is one method, ``map(fn, jobs) -> results`` in job order, so a scale-out
backend (Ray) plugs in beside these two. Jobs must not depend on which process runs them:
each seeds itself from its own description, so every executor writes the same artefacts.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Protocol, Sequence, TypeVar

log = logging.getLogger(__name__)
Job = TypeVar("Job")
Result = TypeVar("Result")


class Executor(Protocol):
    """Runs ``fn`` on every job; results come back in the order of ``jobs``."""

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        """``[fn(job) for job in jobs]``, however the jobs are spread."""


class SerialExecutor:
    """Every job in this process, one after the other (the default)."""

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        """Run the jobs in order."""
        return [fn(job) for job in jobs]

    def __repr__(self) -> str:
        return "SerialExecutor()"


def _init_worker() -> None:
    """One torch thread per worker: the workers already use the cores."""
    try:
        import torch
    except ImportError:  # a job that needs no torch
        return
    torch.set_num_threads(1)


class ProcessExecutor:
    """Jobs spread over `processes` fresh Python processes (spawned, not forked).

    Spawned workers start clean: no inherited torch thread pools or pybullet clients. `fn`
    and the jobs must be picklable (module-level functions, dataclasses).
    """

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.processes = processes

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        """Run the jobs on the pool; the first job error is raised here."""
        if not jobs:
            return []
        workers = min(self.processes, len(jobs))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            return list(pool.map(fn, jobs))

    def __repr__(self) -> str:
        return f"ProcessExecutor(processes={self.processes})"


def make_executor(processes: int = 0) -> Executor:
    """Serial for 0 or 1 process, else a process pool of that size."""
    if processes < 0:
        raise ValueError(f"--processes must be >= 0 (0: run jobs in this process), "
                         f"got {processes}")
    return ProcessExecutor(processes) if processes > 1 else SerialExecutor()

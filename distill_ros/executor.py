"""Executors run independent jobs (a teacher to train, a shard to collect, an eval row).

The interface is ``map(fn, jobs, label, progress) -> results`` in job order, and for
`schedule.run_graph` (jobs that wait for others) ``slots``, ``submit``, ``cancel`` and a
progress ``channel``: serial, a process pool, or Ray tasks (`RayExecutor` in `executor_ray`,
the optional ``[ray]`` extra). Jobs must not depend on which process runs them: each seeds
itself from its own description and writes atomically, so every executor writes the same
artefacts.
`label` names the kind of job (``teachers``, ``collect``, ``eval``): Ray tasks declare the
CPUs and GPUs the config gives that kind. `progress` (a `progress.StageProgress`) gets
the jobs' own `progress.report` counts from whichever worker runs them.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
import time
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.managers import SyncManager
from typing import Callable, Iterator, Optional, Protocol, Sequence, TypeVar

from distill_ros.executor_ray import POLL_S, RayConfig, RayExecutor
from distill_ros.progress import Sink, StageProgress, reporting, run_job

__all__ = ["EXECUTORS", "Executor", "ProcessExecutor", "RayConfig", "RayExecutor",
           "SerialExecutor", "exit_with_parent", "make_executor", "run_job"]
log = logging.getLogger(__name__)
Job = TypeVar("Job")
Result = TypeVar("Result")

EXECUTORS = ("serial", "processes", "ray")
PARENT_POLL_S = 0.5


def exit_with_parent(parent: int) -> None:
    """End this process (`os._exit`) soon after process `parent` is gone.

    For processes a run spawns (pool workers, their progress manager, DDP ranks): a worker
    busy with a job reads nothing from its parent, so when the driver dies without cleaning
    up (SIGKILL, or a SIGTERM, which Python answers by exiting at once) it would run on as
    an orphan, still writing a teacher's checkpoints into the run folder a resumed run is
    using. A daemon thread polls the parent's pid (`os.getppid` changes when the parent
    dies); `parent` is the driver's pid, passed in, so a driver that died before this ran is
    noticed too.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Channel(Protocol):
    """Where the jobs of a `run_graph` report progress: `sink` for them, `take` for the driver."""

    sink: Sink

    def take(self) -> list:
        """The messages that came in since the last call."""

    def close(self) -> None:
        """Free what the channel holds."""


class Executor(Protocol):
    """Runs ``fn`` on every job; results come back in the order of ``jobs``."""

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job], label: str = "jobs",
            progress: Optional[StageProgress] = None) -> list[Result]:
        """``[fn(job) for job in jobs]``, however the jobs are spread."""

    def slots(self) -> int:
        """How many jobs of one CPU run at once."""

    def submit(self, fn: Callable, job: object, label: str = "jobs", index: int = 0,
               sink: Optional[Sink] = None) -> cf.Future:
        """Start ``fn(job)`` as job number `index` of kind `label`, reporting to `sink`."""

    def cancel(self, futures: Sequence[cf.Future]) -> None:
        """Stop submitted jobs that are not needed any more (after another one failed)."""

    def channel(self) -> Channel:
        """A progress channel for the jobs `submit` starts."""


class SerialExecutor:
    """Every job in this process, one after the other (the default)."""

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job], label: str = "jobs",
            progress: Optional[StageProgress] = None) -> list[Result]:
        """Run the jobs in order."""
        results = []
        for i, job in enumerate(jobs):
            with reporting(i, progress):
                results.append(fn(job))
            if progress is not None:
                progress.job_done(i)
        return results

    def slots(self) -> int:
        """How many jobs run at once: one."""
        return 1

    def submit(self, fn: Callable, job: object, label: str = "jobs", index: int = 0,
               sink: Optional[Sink] = None) -> cf.Future:
        """Run the job now; its result (or error) is in the returned, finished future."""
        future: cf.Future = cf.Future()
        try:
            with reporting(index, sink):
                future.set_result(fn(job))
        except Exception as err:  # the scheduler raises it, as the other executors do
            future.set_exception(err)
        return future

    def cancel(self, futures: Sequence[cf.Future]) -> None:
        """Nothing runs in the background."""

    def channel(self) -> "Channel":
        """Progress messages of the jobs run here: a plain list."""
        return ListChannel()

    def __repr__(self) -> str:
        return "SerialExecutor()"


class ListChannel:
    """A progress channel in this process: jobs `put`, the driver `take`s."""

    def __init__(self) -> None:
        self.sink, self.items = self, []

    def put(self, item: object) -> None:
        """One message."""
        self.items.append(item)

    def take(self) -> list:
        """Every message since the last call."""
        items, self.items = self.items, []
        return items

    def close(self) -> None:
        """Nothing to free."""


class ProcessExecutor:
    """Jobs spread over `processes` Python processes (spawned, not forked), kept for reuse.

    Spawned workers start clean: no inherited torch thread pools or pybullet clients. They
    stay up from one `map` to the next (each stage would otherwise pay their imports again)
    until `shutdown` or the end of the program, a killed one too (`exit_with_parent`). `fn`
    and the jobs must be picklable (module-level functions, dataclasses). Progress comes
    back through a manager queue.
    """

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.processes = processes
        self._context = multiprocessing.get_context("spawn")
        self._pool: Optional[ProcessPoolExecutor] = None
        self._manager = self._queue = None

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job], label: str = "jobs",
            progress: Optional[StageProgress] = None) -> list[Result]:
        """Run the jobs on the pool; the first job error is raised here."""
        if not jobs:
            return []
        if self._pool is None:
            self._pool = self._new_pool()
        queue = self._progress_queue() if progress is not None else None
        if progress is not None:
            progress.ran_on(self)
        try:
            futures = [self._pool.submit(run_job, fn, job, i, queue)
                       for i, job in enumerate(jobs)]
            return _follow(futures, queue, progress)
        except BrokenProcessPool:
            self._pool = None  # a worker died: the next map starts a fresh pool
            raise

    def slots(self) -> int:
        """How many jobs run at once: the pool's processes."""
        return self.processes

    def submit(self, fn: Callable, job: object, label: str = "jobs", index: int = 0,
               sink: Optional[Sink] = None) -> cf.Future:
        """Start the job on the pool (its future raises BrokenProcessPool if a worker died)."""
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(run_job, fn, job, index, sink)
        except BrokenProcessPool:  # a worker of an earlier graph died: a fresh pool
            self._pool = self._new_pool()
            return self._pool.submit(run_job, fn, job, index, sink)

    def cancel(self, futures: Sequence[cf.Future]) -> None:
        """Drop the jobs not started yet (a running one ends on its own)."""
        for future in futures:
            future.cancel()
        if any(f.done() and not f.cancelled() and isinstance(f.exception(), BrokenProcessPool)
               for f in futures):
            self._pool = None

    def channel(self) -> "QueueChannel":
        """The manager queue the workers report to."""
        return QueueChannel(self._progress_queue())

    def _progress_queue(self):
        """The manager queue workers report to, emptied of an earlier map's messages."""
        if self._manager is None:
            self._manager = SyncManager(ctx=self._context)
            self._manager.start(exit_with_parent, (os.getpid(),))
            self._queue = self._manager.Queue()
        _drain(self._queue, None)
        return self._queue

    def _new_pool(self) -> ProcessPoolExecutor:
        """Workers that end with this process, even when it is killed (`exit_with_parent`)."""
        return ProcessPoolExecutor(self.processes, mp_context=self._context,
                                   initializer=exit_with_parent, initargs=(os.getpid(),))

    def shutdown(self) -> None:
        """Stop the worker processes (and the progress manager)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._manager is not None:
            self._manager.shutdown()
            self._manager = self._queue = None

    def __repr__(self) -> str:
        return f"ProcessExecutor(processes={self.processes})"


class QueueChannel:
    """A process pool's progress channel: its manager queue."""

    def __init__(self, queue) -> None:
        self.sink = queue

    def take(self) -> list:
        """Every message waiting in the queue."""
        box = ListChannel()
        _drain(self.sink, box)
        return box.take()

    def close(self) -> None:
        """The queue stays with the pool."""


def _follow(futures: list, queue, progress: Optional[StageProgress]) -> list:
    """Feed `progress` from the workers until every future is done; results in order."""
    index = {f: i for i, f in enumerate(futures)}
    pending = set(futures)
    while pending:
        done, pending = cf.wait(pending, POLL_S, cf.FIRST_COMPLETED)
        _drain(queue, progress)
        if progress is not None:
            progress.tick()
        for future in done:
            if future.exception() is not None:
                for other in pending:
                    other.cancel()
                raise future.exception()
            if progress is not None:
                progress.job_done(index[future])
    return [f.result() for f in futures]


def _drain(queue, progress) -> None:
    """Every message waiting in a process queue, into the bar (or dropped, without one)."""
    import queue as stdlib_queue

    while queue is not None:
        try:
            item = queue.get_nowait()
        except stdlib_queue.Empty:
            return
        if progress is not None:
            progress.put(item)


def make_executor(processes: int = 0, kind: str | None = None,
                  ray: RayConfig | None = None) -> Executor:
    """Serial for 0 or 1 process, else a process pool of that size; or `kind` by name.

    `kind` ``ray`` runs the jobs as Ray tasks as `ray` says (on an embedded instance,
    `processes` CPUs when > 0, else all).
    """
    if processes < 0:
        raise ValueError(f"--processes must be >= 0 (0: run jobs in this process), "
                         f"got {processes}")
    if kind not in (None, *EXECUTORS):
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {kind!r}")
    if kind == "ray":
        return RayExecutor.from_config(ray or RayConfig(), processes or None)
    if kind == "serial":
        return SerialExecutor()
    return ProcessExecutor(processes) if processes > 1 else SerialExecutor()


@contextmanager
def stage_executor(kind: str | None, ray: RayConfig | None = None,
                   processes: int | None = None) -> Iterator[Executor]:
    """An executor of `kind` for one stage, its workers stopped when the stage ends.

    It runs on `processes` (default: the cores this process may use), as `make_executor`
    makes it. A family's eval stage runs its own jobs this way: `processes` on one worker
    per core, `ray` as `ray` says, `serial` in this process.
    """
    cores = len(os.sched_getaffinity(0)) if processes is None else processes
    executor = make_executor(cores, kind, ray)
    try:
        yield executor
    finally:
        getattr(executor, "shutdown", lambda: None)()   # serial: nothing to stop

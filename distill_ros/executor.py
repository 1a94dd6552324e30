"""Executors run independent jobs (a shard to collect, a task to evaluate) and return results.

The interface is one method, ``map(fn, jobs) -> results`` in job order: serial, a
process pool, or Ray tasks (`RayExecutor`, the optional ``[ray]`` extra). Jobs must not
depend on which process runs them: each seeds itself from its own description, so every
executor writes the same artefacts.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, TypeVar

from distill_ros.checks import in_range, positive

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


def _run_job(fn: Callable[[Job], Result], job: Job) -> Result:
    """A job in a worker that other jobs share the cores with: one torch thread."""
    _init_worker()
    return fn(job)


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


class RayExecutor:
    """Jobs as Ray tasks, each declaring `num_cpus` (and `num_gpus`); retried if a worker dies.

    With no `address`, the first `map` starts an embedded Ray instance on this machine
    (loopback only, no dashboard, usage stats off unless $RAY_USAGE_STATS_ENABLED says
    otherwise) with `local_cpus` CPUs (default: all); ``auto`` or ``ray://host:port`` joins
    a running cluster. Jobs are seeded from their own description and write atomically,
    so a retried job writes the same file once.
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, local_cpus: int | None = None,
                 max_retries: int = 3) -> None:
        if num_cpus <= 0 or num_gpus < 0:
            raise ValueError(f"a Ray task needs num_cpus > 0 and num_gpus >= 0, got "
                             f"num_cpus={num_cpus}, num_gpus={num_gpus}")
        self.address, self.num_cpus, self.num_gpus = address or None, num_cpus, num_gpus
        self.local_cpus, self.max_retries = local_cpus, max_retries
        self._started = False

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        """Submit every job, then gather the results in job order (a job error raised here)."""
        if not jobs:
            return []
        ray = self._ray()
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                          max_retries=self.max_retries)(_run_job)
        return ray.get([task.remote(fn, job) for job in jobs])

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ImportError("executor ray needs Ray: pip install 'distill_ros[ray]'") from None
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(num_cpus=self.local_cpus, include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False)
                self._started = True
            log.info("ray: %s", ray.cluster_resources())
        return ray

    def shutdown(self) -> None:
        """Stop the embedded Ray instance this executor started (a cluster is left alone)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, "
                f"num_gpus={self.num_gpus})")


EXECUTORS = ("serial", "processes", "ray")


@dataclass
class RayConfig:
    """The `ray` section: where the cluster is and what each task declares."""

    address: str = ""       # "": an embedded local instance; "auto" or "ray://host:port"
    num_cpus: float = 1.0   # CPUs each task declares
    num_gpus: float = 0.0   # GPUs each task declares

    def __post_init__(self) -> None:
        positive("ray", num_cpus=self.num_cpus)
        in_range("ray.num_gpus", self.num_gpus, 0.0, 1024.0)


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
        ray = ray or RayConfig()
        return RayExecutor(ray.address, ray.num_cpus, ray.num_gpus, processes or None)
    if kind == "serial":
        return SerialExecutor()
    return ProcessExecutor(processes) if processes > 1 else SerialExecutor()

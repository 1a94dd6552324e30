"""`executor: ray`: jobs as Ray tasks that declare the CPUs and GPUs their kind needs.

With no `ray.address` the first `map` starts an embedded Ray instance on this machine
(loopback only, usage stats off unless $RAY_USAGE_STATS_ENABLED says otherwise, the
dashboard only if `ray.dashboard`); ``auto`` or ``ray://host:port`` joins a running
cluster. A task whose worker dies (a node lost, a SIGKILL) is retried up to
`ray.max_retries` times; jobs are seeded from their own description and write atomically,
so a retried job writes the same file once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from distill_ros.checks import choice, in_range, positive

log = logging.getLogger(__name__)
POLL_S = 0.25  # s, how often the driver gathers worker progress while tasks run
JOB_KINDS = ("teachers", "collect", "eval", "rollout")  # `label`s of jobs (rollout: actors)


@dataclass
class JobNeeds:
    """What one Ray task of a kind declares to the scheduler."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        positive("ray.jobs entry", num_cpus=self.num_cpus)
        in_range("ray.jobs entry.num_gpus", self.num_gpus, 0.0, 1024.0)


@dataclass
class RayConfig:
    """The `ray` section: where the cluster is and what each task declares."""

    address: str = ""       # "": an embedded local instance; "auto" or "ray://host:port"
    num_cpus: float = 1.0   # CPUs each task declares (unless `jobs` says otherwise)
    num_gpus: float = 0.0   # GPUs each task declares (unless `jobs` says otherwise)
    jobs: dict[str, JobNeeds] = field(default_factory=dict)  # per kind, e.g. teachers
    max_retries: int = 3    # a task whose worker died runs again up to this many times
    dashboard: bool = False  # embedded instance: start the dashboard (needs ray[default])

    def __post_init__(self) -> None:
        positive("ray", num_cpus=self.num_cpus)
        in_range("ray.num_gpus", self.num_gpus, 0.0, 1024.0)
        in_range("ray.max_retries", self.max_retries, 0, 100)
        for kind in self.jobs:
            choice("ray.jobs key", kind, JOB_KINDS)


class _ProgressBox:
    """A Ray actor holding the workers' progress messages until the driver takes them."""

    def __init__(self) -> None:
        self.items: list = []

    def put(self, item: Any) -> None:
        self.items.append(item)

    def take(self) -> list:
        items, self.items = self.items, []
        return items


class _ActorSink:
    """A `progress.Sink` that sends to a `_ProgressBox` actor without waiting."""

    def __init__(self, box: Any) -> None:
        self.box = box

    def put(self, item: Any) -> None:
        self.box.put.remote(item)


class ActorChannel:
    """Progress messages through a `_ProgressBox` actor (a `schedule.run_graph` channel)."""

    def __init__(self, ray: Any, box: Any) -> None:
        self.ray, self.box, self.sink = ray, box, _ActorSink(box)

    def take(self) -> list:
        """The messages the tasks sent since the last call."""
        return self.ray.get(self.box.take.remote())

    def close(self) -> None:
        """Stop the actor."""
        self.ray.kill(self.box)


class ActorGroup:
    """Ray actors called together: the same method on each, one shared argument sent once."""

    def __init__(self, ray: Any, actors: list) -> None:
        self.ray, self.actors = ray, actors

    def call(self, method: str, shared: Any, args: Sequence[tuple]) -> list:
        """`actor.method(shared, *args[i])` on every actor (no `shared`: None); the results."""
        head = () if shared is None else (self.ray.put(shared),)
        return self.ray.get([getattr(a, method).remote(*head, *x)
                             for a, x in zip(self.actors, args)])

    def close(self) -> None:
        """Let every actor close what it holds, then stop them."""
        try:
            self.call("close", None, [()] * len(self.actors))
        finally:
            for actor in self.actors:
                self.ray.kill(actor)


class RayExecutor:
    """Jobs as Ray tasks, each declaring the CPUs/GPUs of its kind; retried if a worker dies."""

    def __init__(self, address: str | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, local_cpus: int | None = None,
                 max_retries: int = 3, jobs: Optional[dict[str, JobNeeds]] = None,
                 dashboard: bool = False) -> None:
        if num_cpus <= 0 or num_gpus < 0:
            raise ValueError(f"a Ray task needs num_cpus > 0 and num_gpus >= 0, got "
                             f"num_cpus={num_cpus}, num_gpus={num_gpus}")
        self.address, self.num_cpus, self.num_gpus = address or None, num_cpus, num_gpus
        self.local_cpus, self.max_retries = local_cpus, max_retries
        self.jobs, self.dashboard = dict(jobs or {}), dashboard
        self.dashboard_url = ""
        self._started = False
        self._refs: dict = {}   # future of `submit` -> its task's ObjectRef (to cancel it)
        self._run_job: Any = None

    @classmethod
    def from_config(cls, cfg: RayConfig, local_cpus: int | None = None) -> "RayExecutor":
        """The executor the `ray` section describes (`local_cpus` for an embedded instance)."""
        return cls(cfg.address, cfg.num_cpus, cfg.num_gpus, local_cpus, cfg.max_retries,
                   cfg.jobs, cfg.dashboard)

    def needs(self, label: str) -> JobNeeds:
        """What a task of kind `label` declares: its `ray.jobs` entry, else the defaults."""
        return self.jobs.get(label) or JobNeeds(self.num_cpus, self.num_gpus)

    def map(self, fn: Callable, jobs: Sequence, label: str = "jobs",
            progress: Any = None) -> list:
        """Submit every job, then gather the results in job order (a job error raised here)."""
        from distill_ros.progress import run_job

        if not jobs:
            return []
        ray = self._ray()
        needs = self.needs(label)
        task = ray.remote(run_job).options(num_cpus=needs.num_cpus, num_gpus=needs.num_gpus,
                                           max_retries=self.max_retries, name=label)
        if progress is None:
            return ray.get([task.remote(fn, job) for job in jobs])
        progress.ran_on(self)
        box = ray.remote(num_cpus=0)(_ProgressBox).remote()
        try:
            refs = [task.remote(fn, job, i, _ActorSink(box)) for i, job in enumerate(jobs)]
            _follow(ray, refs, box, progress)
            return ray.get(refs)
        finally:
            ray.kill(box)

    def slots(self) -> int:
        """How many one-kind tasks run at once: the cluster's CPUs over a task's CPUs."""
        cpus = self._ray().cluster_resources().get("CPU", 1.0)
        return max(1, int(cpus // self.num_cpus))

    def submit(self, fn: Callable, job: Any, label: str = "jobs", index: int = 0,
               sink: Any = None) -> Any:
        """Start the job as a Ray task of kind `label`; a `concurrent.futures` future."""
        from distill_ros.progress import run_job

        ray = self._ray()
        needs = self.needs(label)
        if self._run_job is None:  # one remote function: Ray exports it once, not per job
            self._run_job = ray.remote(run_job)
        ref = self._run_job.options(num_cpus=needs.num_cpus, num_gpus=needs.num_gpus,
                                    max_retries=self.max_retries,
                                    name=label).remote(fn, job, index, sink)
        future = ref.future()
        self._refs[future] = ref
        future.add_done_callback(lambda f: self._refs.pop(f, None))
        return future

    def cancel(self, futures: Sequence) -> None:
        """Cancel the Ray tasks of these futures."""
        ray = self._ray()
        for future in futures:
            ref = self._refs.pop(future, None)
            if ref is not None:
                ray.cancel(ref)

    def actor_group(self, cls: type, inits: Sequence[tuple], label: str) -> "ActorGroup":
        """One Ray actor of class `cls` per entry of `inits` (its constructor's arguments).

        Each declares the CPUs/GPUs of kind `label`. An actor is not restarted when its
        process dies: it holds state (envs mid-run), so the driver's call fails instead.
        """
        ray = self._ray()
        needs = self.needs(label)
        remote = ray.remote(cls).options(num_cpus=needs.num_cpus, num_gpus=needs.num_gpus)
        return ActorGroup(ray, [remote.remote(*args) for args in inits])

    def channel(self) -> "ActorChannel":
        """A progress actor the tasks report to."""
        ray = self._ray()
        return ActorChannel(ray, ray.remote(num_cpus=0)(_ProgressBox).remote())

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ImportError("executor ray needs Ray: pip install 'distill_ros[ray]'") from None
        if not ray.is_initialized():
            if self.address:
                context = ray.init(address=self.address, log_to_driver=False)
            else:
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                _loopback_only()
                context = ray.init(num_cpus=self.local_cpus, include_dashboard=self.dashboard,
                                   dashboard_host="127.0.0.1", _node_ip_address="127.0.0.1",
                                   log_to_driver=False)
                self._started = True
            url = getattr(context, "dashboard_url", "") or ""
            self.dashboard_url = url if not url or "://" in url else f"http://{url}"
            if self.dashboard_url:
                log.info("ray dashboard: %s", self.dashboard_url)
            log.info("ray: %s", ray.cluster_resources())
        return ray

    def shutdown(self) -> None:
        """Stop the embedded Ray instance this executor started (a cluster is left alone)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
            self._run_job = None

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus}, "
                f"num_gpus={self.num_gpus})")


def _loopback_only() -> None:
    """Keep an embedded instance on 127.0.0.1 (its GCS, raylet and workers).

    Ray replaces 127.0.0.1 with this host's network address unless its multi-host mode is
    off (as on a laptop), set by $RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when Ray is imported; the
    variable covers the processes Ray starts, the constant this one.
    """
    from ray._private import ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _follow(ray, refs: list, box: Any, progress: Any) -> None:
    """Feed `progress` from the workers' messages until every task has ended."""
    index = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            for item in ray.get(box.take.remote()):
                progress.put(item)
            ray.get(done)  # the first job error, raised here
            for ref in done:
                progress.job_done(index[ref])
            progress.tick()
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise

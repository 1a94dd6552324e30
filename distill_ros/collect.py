"""Teacher rollouts into dataset shards: the one collection job every algorithm shares.

`collect_shard(plan, task, shard_index)` rolls out the episodes of one shard and writes it
atomically. A shard depends only on the plan (family, seed, demonstrators) and its index:
episode `e` of task `i` starts from `episode_seed(seed, i, e)` in a fresh env and is driven
by demonstrator `e mod count`, so any executor, in any order, writes the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from distill_ros.checks import choice, positive

log = logging.getLogger(__name__)


@dataclass
class CollectConfig:
    """Settings of the `collect` section: teacher rollouts that become the dataset."""

    episodes_per_task: int = 200
    keep: str = "success"       # episodes stored: successful ones only, or all
    shard_episodes: int = 50

    def __post_init__(self) -> None:
        choice("collect.keep", self.keep, ("success", "all"))
        positive("collect", episodes_per_task=self.episodes_per_task,
                 shard_episodes=self.shard_episodes)

    def n_shards(self) -> int:
        """Shards per task (the last may hold fewer episodes)."""
        return -(-self.episodes_per_task // self.shard_episodes)


@dataclass(frozen=True)
class CollectPlan:
    """Everything a worker needs to write any shard: picklable, no open handles."""

    family: str
    tasks: tuple[str, ...]
    seed: int
    collect: CollectConfig
    data_dir: Path
    demonstrators: dict[str, tuple[Path, ...]] = field(default_factory=dict)  # task -> files
    objects: dict = field(default_factory=dict)  # the config's own tasks, re-added in workers

    def shard_path(self, task: str, shard_index: int) -> Path:
        """Where shard `shard_index` of `task` lives."""
        return self.data_dir / task / f"shard_{shard_index:04d}.npz"

    def shard_size(self, shard_index: int) -> int:
        """Episodes in shard `shard_index` (the last one may hold fewer)."""
        first = shard_index * self.collect.shard_episodes
        return min(self.collect.shard_episodes, self.collect.episodes_per_task - first)

    def missing(self) -> list[tuple[str, int]]:
        """(task, shard index) of every shard not yet on disk, in task then shard order."""
        return [(task, k) for task in self.tasks for k in range(self.collect.n_shards())
                if not self.shard_path(task, k).is_file()]

    def __call__(self, job: tuple[str, int]) -> dict:
        """Run one job for an executor: `collect_shard(self, *job)`."""
        return collect_shard(self, *job)


def collect_shard(plan: CollectPlan, task: str, shard_index: int) -> dict:
    """Roll out and write one shard of `task`; returns its counts for the log.

    A shard already on disk (its job was killed after writing it, and retried) is read back,
    not written again.
    """
    from distill_ros.distill.dataset import write_shard
    from distill_ros.progress import report
    from distill_ros.rollout import episode_seed, run_episode
    from distill_ros.tasks.base import add_user_tasks, make_env
    from distill_ros.teachers import load_teacher

    fam = add_user_tasks(plan.family, plan.objects, "objects")  # a fresh worker knows none
    cfg = plan.collect
    i = plan.tasks.index(task)
    files = plan.demonstrators[task]
    first = shard_index * cfg.shard_episodes
    last = first + plan.shard_size(shard_index)
    if plan.shard_path(task, shard_index).is_file():
        return _written(plan, task, shard_index)
    loaded: dict[int, object] = {}
    env = make_env(plan.family, task)
    try:
        episodes = []
        for e in range(first, last):
            d = e % len(files)
            if d not in loaded:
                loaded[d] = load_teacher(files[d], fam.obs_spec, fam.act_spec)
            episodes.append(run_episode(env, loaded[d].act, episode_seed(plan.seed, i, e)))
            report(1)
    finally:
        env.close()
    steps = write_shard(plan.shard_path(task, shard_index), episodes, task, fam.obs_spec,
                        fam.act_spec, cfg.keep)
    return {"task": task, "shard": shard_index, "episodes": len(episodes),
            "successes": sum(e.success for e in episodes), "steps_stored": steps}


def _written(plan: CollectPlan, task: str, shard_index: int) -> dict:
    """The counts of a shard an earlier attempt of the same job wrote."""
    import numpy as np

    with np.load(plan.shard_path(task, shard_index), allow_pickle=False) as z:
        successes, episode = z["successes"], z["episode"]
    log.info("collect: %s shard %d was written by an earlier attempt, kept", task, shard_index)
    return {"task": task, "shard": shard_index, "episodes": int(len(successes)),
            "successes": int(successes.sum()), "steps_stored": int(len(episode))}


def tidy(folder: Path) -> None:
    """Remove the temporary files of jobs killed mid-write (every job has ended now)."""
    from distill_ros.atomic import remove_stale_temporaries

    removed = remove_stale_temporaries(folder)
    if removed:
        log.info("%s: removed %d temporary file(s) of killed writers", folder, removed)


def collect_all(plan: CollectPlan, executor, progress_path: Path | None = None) -> dict:
    """Write every missing shard through `executor`; steps per task of the whole dataset.

    One bar counts the episodes of every worker; `progress_path` gets the same numbers.
    """
    import numpy as np

    from distill_ros.distill.dataset import load_dataset
    from distill_ros.progress import StageProgress
    from distill_ros.tasks.base import get_family

    jobs = plan.missing()
    kept = len(plan.tasks) * plan.collect.n_shards() - len(jobs)
    if kept:
        log.info("collect: kept %d shard(s) already written (by an earlier run, or by "
                 "the teachers stage as each teacher finished)", kept)
    if jobs:
        log.info("collect: %d shard(s) to write on %r", len(jobs), executor)
    with StageProgress("collect", [plan.shard_size(k) for _, k in jobs], "ep",
                       progress_path) as progress:
        results = executor.map(plan, jobs, "collect", progress)
    tidy(plan.data_dir)
    for r in results:
        log.info("collect: %s shard %d: %d/%d episodes succeeded, %d steps stored", r["task"],
                 r["shard"], r["successes"], r["episodes"], r["steps_stored"])
    fam = get_family(plan.family)
    obs, _, idx = load_dataset(plan.data_dir, list(plan.tasks), fam.obs_spec, fam.act_spec)
    return {"steps": {t: int(np.sum(idx == i)) for i, t in enumerate(plan.tasks)},
            "total_steps": int(len(obs))}

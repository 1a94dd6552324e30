"""DAgger's rollouts: one vector of envs here, or rollout workers that each hold a slice.

`dagger.rollout_workers: 0` keeps today's loop: one vector of every env (a process pool when
`dagger.vector` says so), labelled by the teachers loaded here. With k > 0 the envs are cut
into k contiguous slices, one per `RolloutWorker`, which holds its envs, the teachers of its
tasks and a copy of the student. Each round the driver sends the student's weights and the
round's plan (reset seeds, steps, the β coins its own mixer drew), and each worker rolls its
slice out with `collect_round` and sends back its transitions (the student's observations
and the teachers' labels, per step), which the driver adds to the buffer in env order: only
weights and transitions travel. With `executor: ray` the workers are Ray actors declaring
the CPUs of `ray.jobs.rollout`; with any other executor they live in this process.

The driver's mixer draws every coin, and the budget is cut before the round, so coins,
counters and buffer follow the one-vector loop. The student acts on each slice as one
batch: one worker gives the one-vector numbers bit for bit (unless the student draws torch
random numbers: the teachers load in the worker, not here), while k workers differ from them
by float rounding (a batch's rows are not computed one by one) and equal one another on
every executor.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from distill_ros.distill.dagger.algorithm import normalize_labels, student_act
from distill_ros.distill.dagger.beta import OnDemandGate, ReplayedCoins
from distill_ros.distill.dagger.collect import (Groups, RoundStats, collect_round,
                                                evaluation_counts, evaluation_summary)
from distill_ros.distill.dagger.envs import make_vector_env, select, to_groups
from distill_ros.distill.dagger.routing import TeacherRouter


class VectorRollouts:
    """Every env in one vector here, labelled by the teachers loaded here (no workers)."""

    def __init__(self, make_env: Callable, env_tasks: Sequence[str], vector: str,
                 load_teacher: Callable[[str], object], gaussian: bool) -> None:
        self.env_tasks, self.load_teacher, self.gaussian = list(env_tasks), load_teacher, gaussian
        self.envs = make_vector_env(make_env, env_tasks, vector)
        self.router: TeacherRouter | None = None

    def shapes(self, seeds: list[int], groups: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of the student's inputs (after a reset with `seeds`)."""
        obs, _ = self.envs.reset(seed=seeds)
        return {k: tuple(v.shape[1:]) for k, v in select(to_groups(obs), groups).items()}

    def start(self, act_dim: int) -> None:
        """Load the teachers (once the student says how many actions there are)."""
        self.router = TeacherRouter(self.env_tasks, self.load_teacher, act_dim, self.gaussian)

    @property
    def queries(self) -> int:
        """States labelled by a teacher so far (resumed runs: set from the checkpoint)."""
        return self.router.queries

    @queries.setter
    def queries(self, value: int) -> None:
        self.router.queries = value

    def collect(self, algo, mixer, groups: Groups, steps: int, seeds: list[int],
                task_index: np.ndarray, budget: int | None, noise: float = 0.0) -> RoundStats:
        """One round on the vector (`collect_round`)."""
        return collect_round(self.envs, algo, self.router, mixer, groups, steps, seeds,
                             task_index, budget, noise)

    def evaluate(self, algo, groups: Sequence[str], episodes: int, seeds: list[int]
                 ) -> tuple[dict[str, float], float]:
        """The student alone: success per task, and the mean return of its episodes."""
        counts = evaluation_counts(self.envs, lambda g: algo.act(g)[0], groups, episodes, seeds)
        return evaluation_summary(*counts, self.env_tasks)

    def close(self) -> None:
        """Close the envs."""
        self.envs.close()


class RolloutWorker:
    """A slice of the envs, their tasks' teachers and a student copy (a Ray actor or local)."""

    def __init__(self, make_env: Callable, env_tasks: Sequence[str], vector: str,
                 load_teacher: Callable[[str], object], build_student: Callable,
                 student_groups: Sequence[str], seeds: list[int], gaussian: bool,
                 gate: Any = None) -> None:
        self.env_tasks, self.gate = list(env_tasks), gate
        self.envs = make_vector_env(make_env, env_tasks, vector)
        obs, _ = self.envs.reset(seed=seeds)
        self.input_shapes = {k: tuple(v.shape[1:])
                             for k, v in select(to_groups(obs), student_groups).items()}
        self.student = build_student(self.input_shapes)
        act_dim = int(self.student.act_low.numel())
        self.router = TeacherRouter(env_tasks, load_teacher, act_dim, gaussian)
        self.steps: list = []

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of the student's inputs."""
        return self.input_shapes

    def collect(self, weights: dict, groups: Groups, steps: int, seeds: list[int],
                task_index: np.ndarray, coins: tuple | None, noise: float = 0.0) -> dict:
        """Roll the slice out for `steps` steps with these weights; transitions and counts.

        `coins`: (per_step, rows) the driver drew for this slice, or None for on-demand
        gating (each worker gates its own envs).
        """
        self.student.load_state_dict(weights)
        mixer = OnDemandGate(self.gate, len(self.env_tasks), 0) if coins is None \
            else ReplayedCoins(*coins)
        self.steps = []
        stats = collect_round(self.envs, self, self.router, mixer, groups, steps, seeds,
                              task_index, None, noise)
        return {"stats": stats, "steps": self.steps, "mixer": mixer.round_counts()}

    def evaluate(self, weights: dict, groups: Sequence[str], episodes: int,
                 seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per env of the slice: episodes won and finished by the student alone, returns."""
        self.student.load_state_dict(weights)
        return evaluation_counts(self.envs, lambda g: self.act(g)[0], groups, episodes, seeds)

    # the learner's verbs that `collect_round` calls
    def act(self, obs: dict) -> tuple[np.ndarray, np.ndarray]:
        """The student copy's (physical, normalised) actions."""
        return student_act(self.student, obs)

    def normalize(self, mean: np.ndarray, std: np.ndarray | None = None) -> tuple:
        """Teacher labels in the student's normalised action space."""
        return normalize_labels(self.student, mean, std)

    def process_env_step(self, obs: dict, mean: np.ndarray, std: np.ndarray | None,
                         task: np.ndarray) -> None:
        """Keep one step's transitions for the driver."""
        self.steps.append((obs, mean, std))

    def close(self) -> None:
        """Close the envs."""
        self.envs.close()


class WorkerRollouts:
    """The round on rollout workers: plan it here, run it there, merge the transitions."""

    def __init__(self, workers: Any, slices: list[slice], env_tasks: Sequence[str]) -> None:
        self.workers, self.slices, self.env_tasks = workers, slices, list(env_tasks)
        self.queries = 0

    def shapes(self, seeds: list[int], groups: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """The student's input shapes, as the first worker saw them."""
        return self.workers.call("shapes", None, [()] * len(self.slices))[0]

    def start(self, act_dim: int) -> None:
        """The workers loaded their teachers when they started."""

    def collect(self, algo, mixer, groups: Groups, steps: int, seeds: list[int],
                task_index: np.ndarray, budget: int | None, noise: float = 0.0) -> RoundStats:
        """Cut the round to the budget, draw its coins, run it on the workers, merge it."""
        n = len(self.env_tasks)
        taken = steps if budget is None else max(0, min(steps, (budget - self.queries) // n))
        coins = mixer.draw_round(taken)
        per_step = getattr(mixer, "cfg", None) is not None and mixer.cfg.per == "step"
        args = [(groups, taken, seeds[s], task_index[s],
                 None if coins is None else (per_step, coins[:, s]), noise)
                for s in self.slices]
        parts = self.workers.call("collect", _weights(algo.get_policy()), args)
        for k in range(taken):  # the buffer gets each step's rows in env order
            obs = {key: np.concatenate([p["steps"][k][0][key] for p in parts])
                   for key in parts[0]["steps"][k][0]}
            std = [p["steps"][k][2] for p in parts]
            algo.process_env_step(obs, np.concatenate([p["steps"][k][1] for p in parts]),
                                  None if std[0] is None else np.concatenate(std), task_index)
        stats = _merged([p["stats"] for p in parts], budget_hit=taken < steps)
        mixer.merge_round([{**p["mixer"], "episodes": p["stats"].episodes} for p in parts],
                          taken)
        self.queries += stats.queries
        return stats

    def evaluate(self, algo, groups: Sequence[str], episodes: int, seeds: list[int]
                 ) -> tuple[dict[str, float], float]:
        """The student alone on every worker: success per task, mean return per episode."""
        counts = self.workers.call("evaluate", _weights(algo.get_policy()),
                                   [(groups, episodes, seeds[s]) for s in self.slices])
        merged = (np.concatenate([c[k] for c in counts]) for k in range(3))
        return evaluation_summary(*merged, self.env_tasks)

    def close(self) -> None:
        """Stop the workers."""
        self.workers.close()


def _weights(student: torch.nn.Module) -> dict:
    """The policy's weights, detached copies (what travels to the workers)."""
    return {k: v.detach().clone() for k, v in student.state_dict().items()}


def _merged(parts: list[RoundStats], budget_hit: bool) -> RoundStats:
    """One round's stats from the workers' (per-task counts in task order of first sight)."""
    out = RoundStats(budget_hit=budget_hit)
    for p in parts:
        for key in ("steps", "queries", "episodes", "successes", "teacher_steps"):
            setattr(out, key, getattr(out, key) + getattr(p, key))
        for task, (episodes, successes) in p.per_task.items():
            row = out.per_task.setdefault(task, [0, 0])
            row[0] += episodes
            row[1] += successes
    return out


def slices_of(n_envs: int, workers: int) -> list[slice]:
    """`workers` contiguous slices of `n_envs` envs, sizes differing by at most one."""
    if not 1 <= workers <= n_envs:
        raise ValueError(f"dagger.rollout_workers must be between 1 and dagger.n_envs "
                         f"({n_envs}), got {workers}")
    bounds = [round(n_envs * k / workers) for k in range(workers + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def make_rollouts(cfg, job, env_tasks: list[str], gaussian: bool):
    """The rollouts `cfg.rollout_workers` asks for: one vector here, or workers.

    Workers are Ray actors when `job.executor` is a `RayExecutor` (each steps its envs in
    its own process), else objects here (each steps its envs as `dagger.vector` says).
    """
    from distill_ros.distill.dagger.collect import round_seeds
    from distill_ros.executor import RayExecutor

    if not cfg.rollout_workers:
        return VectorRollouts(job.make_env, env_tasks, cfg.vector, job.load_teacher, gaussian)
    slices = slices_of(len(env_tasks), cfg.rollout_workers)
    seeds = round_seeds(job.seed, 0, len(env_tasks))
    on_ray = isinstance(job.executor, RayExecutor)
    inits = [(job.make_env, env_tasks[s], "sync" if on_ray else cfg.vector, job.load_teacher,
              job.build_student, cfg.student_groups, seeds[s], gaussian, cfg.beta)
             for s in slices]
    if on_ray:
        workers = job.executor.actor_group(RolloutWorker, inits, "rollout")
    else:
        with _random_state_kept():  # the workers' students and teachers draw nothing here
            workers = LocalWorkers([RolloutWorker(*args) for args in inits])
    return WorkerRollouts(workers, slices, env_tasks)


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Python's, numpy's and torch's global random states as they were before the block."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class LocalWorkers:
    """Rollout workers in this process, called one after the other."""

    def __init__(self, workers: list[RolloutWorker]) -> None:
        self.workers = workers

    def call(self, method: str, shared: Any, args: list[tuple]) -> list:
        """`worker.method(shared, *args[i])` on every worker (no `shared`: None)."""
        head = () if shared is None else (shared,)
        return [getattr(w, method)(*head, *a) for w, a in zip(self.workers, args)]

    def close(self) -> None:
        """Close every worker's envs."""
        for w in self.workers:
            w.close()

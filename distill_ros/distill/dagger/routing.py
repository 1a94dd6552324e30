"""Per-environment teacher routing: each env holds one task, and that task's teacher labels it.

As UniGraspTransformer's `dagger_value` and HOVER do, the teachers are loaded once, when the
router is built, and each step makes one batched call per task on the rows of its envs.
A teacher gives its mean action, and its std when it is Gaussian (`teacher_gaussian`).
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

Labels = tuple[np.ndarray, np.ndarray | None]   # (B, act_dim) mean, (B, act_dim) std or None


def assign_tasks(tasks: Sequence[str], n_envs: int,
                 weights: Sequence[float] = ()) -> list[str]:
    """The task each of `n_envs` envs holds: round-robin, or apportioned by `weights`.

    With weights, each task gets its share of envs by largest remainder, at least one each,
    so every task is labelled; envs of one task are adjacent.
    """
    tasks = list(tasks)
    if n_envs < len(tasks):
        raise ValueError(f"dagger.n_envs is {n_envs} but the run has {len(tasks)} tasks; each "
                         f"env holds one task, so set dagger.n_envs >= {len(tasks)}")
    if not weights:
        return [tasks[i % len(tasks)] for i in range(n_envs)]
    if len(weights) != len(tasks):
        raise ValueError(f"dagger.task_weights has {len(weights)} values for {len(tasks)} "
                         f"tasks {tasks}; give one weight per task, in the same order")
    w = np.asarray(weights, float)
    spare = n_envs - len(tasks)                     # one env per task first
    share = spare * w / w.sum()
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:spare - counts.sum()]] += 1
    return [t for t, c in zip(tasks, counts + 1) for _ in range(c)]


def teacher_gaussian(teacher: object, obs: np.ndarray) -> Labels:
    """A teacher's (mean, std) in physical action units; std is None for deterministic ones.

    A teacher may define `act_distribution(obs) -> (mean, std)`; SB3 PPO/SAC teachers
    (`SB3Teacher`) are read through their policy's action distribution; any other teacher
    gives its action as the mean.
    """
    if hasattr(teacher, "act_distribution"):
        return teacher.act_distribution(obs)
    if hasattr(teacher, "model") and hasattr(getattr(teacher, "model"), "policy"):
        from distill_ros.distill.dagger.sb3_gaussian import sb3_distribution

        return sb3_distribution(teacher, obs)
    return np.asarray(teacher.act(obs), np.float32), None


class TeacherRouter:
    """Labels a batch of env rows with the teacher of each row's task."""

    def __init__(self, env_tasks: Sequence[str], load: Callable[[str], object], act_dim: int,
                 gaussian: bool) -> None:
        self.env_tasks = list(env_tasks)
        self.tasks = list(dict.fromkeys(self.env_tasks))
        self.rows = {t: np.flatnonzero(np.asarray(self.env_tasks) == t) for t in self.tasks}
        self.teachers = {t: load(t) for t in self.tasks}   # once, never per step
        self.act_dim, self.gaussian = act_dim, gaussian
        self.queries = 0                                 # labelled states, all tasks

    def label(self, teacher_obs: np.ndarray) -> Labels:
        """(mean, std) for each env row of `teacher_obs`, from that env's task's teacher."""
        n = len(teacher_obs)
        mean = np.zeros((n, self.act_dim), np.float32)
        std = np.ones((n, self.act_dim), np.float32) if self.gaussian else None
        for task in self.tasks:
            rows = self.rows[task]
            m, s = teacher_gaussian(self.teachers[task], teacher_obs[rows])
            if self.gaussian and s is None:
                raise ValueError(f"the teacher of task {task!r} gives actions without a std; "
                                 "dagger.loss forward_kl/reverse_kl needs Gaussian teachers "
                                 "(SB3 PPO/SAC .zip): use dagger.loss mse or huber")
            mean[rows] = m
            if self.gaussian:
                std[rows] = s
            self.queries += len(rows)
        return mean, std

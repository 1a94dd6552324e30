"""One DAgger round's rollouts, and the student's evaluation, on a vector of task envs.

Every round starts from a reset seeded by (run seed, round), so a resumed run replays the
same round exactly; later episodes within the round follow each env's own seeded RNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np

from distill_ros.distill.dagger.algorithm import DAgger
from distill_ros.distill.dagger.envs import episode_outcomes, flatten, select, to_groups
from distill_ros.distill.dagger.routing import TeacherRouter


def round_seeds(seed: int, round_index: int, n_envs: int) -> list[int]:
    """Reset seeds of every env at the start of round `round_index` (distinct per round/env)."""
    return [int(seed) * 1_000_003 + round_index * 10_007 + i for i in range(n_envs)]


@dataclass
class RoundStats:
    """What one round's collection did."""

    steps: int = 0                      # env steps taken (all envs)
    queries: int = 0                    # states labelled by a teacher
    episodes: int = 0                   # episodes finished
    successes: int = 0                  # ... of which succeeded
    teacher_steps: int = 0              # steps in which the teacher's action was executed
    budget_hit: bool = False            # stopped early at max_teacher_queries
    per_task: dict = field(default_factory=dict)   # task -> [episodes, successes]


@dataclass
class Groups:
    """Which observation groups each side reads (empty: all)."""

    teacher: Sequence[str]
    student: Sequence[str]


def collect_round(envs: gym.vector.VectorEnv, algo: DAgger, router: TeacherRouter, mixer,
                  groups: Groups, steps: int, seeds: list[int], task_index: np.ndarray,
                  query_budget: int | None, noise: float = 0.0) -> RoundStats:
    """Roll the β-mixed (or on-demand) policy for `steps` vector steps; label every state.

    Stops before a step whose labels would take the teacher queries past `query_budget`
    (None: no limit; counted from the router's running total). `noise` > 0 adds Gaussian
    noise of that std (normalised action units) to the executed actions, drawn from one stream
    per env seeded by its seed, so a resumed round, or one on rollout workers, repeats it.
    """
    stats = RoundStats()
    n = envs.num_envs
    obs, _ = envs.reset(seed=seeds)
    mixer.start_episodes(np.ones(n, bool))
    rngs = [np.random.default_rng([seed, 1]) for seed in seeds]  # per env: workers agree
    half_range = (algo.student.act_high - algo.student.act_low).numpy() / 2.0
    for _ in range(steps):
        if query_budget is not None and router.queries + n > query_budget:
            stats.budget_hit = True
            break
        g = to_groups(obs)
        student_obs = select(g, groups.student)
        t_mean, t_std = router.label(flatten(g, groups.teacher))
        s_act, s_norm = algo.act(student_obs)
        t_norm, _ = algo.normalize(t_mean)
        use_teacher = mixer.teacher_mask(s_norm, t_norm)
        algo.process_env_step(student_obs, t_mean, t_std, task_index)
        action = np.where(use_teacher[:, None], t_mean, s_act)
        if noise > 0.0:
            action = action + noise * half_range * np.stack(
                [rng.standard_normal(action.shape[1]) for rng in rngs])
        obs, _, terminated, truncated, info = envs.step(action)
        done, success = episode_outcomes(terminated, truncated, info)
        mixer.end_episodes(done, success)
        stats.steps += n
        stats.queries += n
        stats.teacher_steps += int(use_teacher.sum())
        _count(stats, done, success, task_index, router.env_tasks)
        if done.any():
            obs, _ = envs.reset(options={"reset_mask": done})
    return stats


def _count(stats: RoundStats, done: np.ndarray, success: np.ndarray, task_index: np.ndarray,
           env_tasks: Sequence[str]) -> None:
    stats.episodes += int(done.sum())
    stats.successes += int((done & success).sum())
    for i in np.flatnonzero(done):
        row = stats.per_task.setdefault(env_tasks[i], [0, 0])
        row[0] += 1
        row[1] += int(success[i])


def evaluate_student(envs: gym.vector.VectorEnv, act: Callable[[dict], np.ndarray],
                     student_groups: Sequence[str], env_tasks: Sequence[str], episodes: int,
                     seeds: list[int]) -> dict[str, float]:
    """Success rate per task of the student alone (`act`: groups -> physical actions)."""
    wins, finished, _ = evaluation_counts(envs, act, student_groups, episodes, seeds)
    return success_per_task(wins, finished, env_tasks)


def success_per_task(wins: np.ndarray, finished: np.ndarray, env_tasks: Sequence[str]
                     ) -> dict[str, float]:
    """Success rate per task from per-env counts of won and finished episodes."""
    tasks = np.asarray(env_tasks)
    return {t: float(wins[tasks == t].sum() / finished[tasks == t].sum())
            for t in dict.fromkeys(env_tasks)}


def evaluation_summary(wins: np.ndarray, finished: np.ndarray, returns: np.ndarray,
                       env_tasks: Sequence[str]) -> tuple[dict[str, float], float]:
    """Success per task, and the mean return per counted episode, from per-env counts."""
    return (success_per_task(wins, finished, env_tasks),
            float(returns.sum() / finished.sum()))


def evaluation_counts(envs: gym.vector.VectorEnv, act: Callable[[dict], np.ndarray],
                      student_groups: Sequence[str], episodes: int, seeds: list[int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per env: episodes won and finished (`episodes` each) by the student alone, returns.

    The returns are each env's sum over its counted episodes of the undiscounted rewards.
    """
    n = envs.num_envs
    wins, finished, returns = np.zeros(n, int), np.zeros(n, int), np.zeros(n)
    running = np.zeros(n)
    obs, _ = envs.reset(seed=seeds)
    while finished.min() < episodes:
        action = act(select(to_groups(obs), student_groups))
        obs, reward, terminated, truncated, info = envs.step(action)
        running += np.where(finished < episodes, reward, 0.0)
        done, success = episode_outcomes(terminated, truncated, info)
        counted = done & (finished < episodes)
        wins += counted & success
        finished += counted
        returns += np.where(counted, running, 0.0)
        running[done] = 0.0
        if done.any():
            obs, _ = envs.reset(options={"reset_mask": done})
    return wins, finished, returns

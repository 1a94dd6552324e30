"""Episode rollouts shared by data collection, evaluation and on-policy distillation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

#: (B, obs_dim) -> (B, act_dim), physical units; a family's grouped env gives a dict of batches
Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class Episode:
    """One episode's observations, the actions taken, and whether it succeeded."""

    obs: np.ndarray            # (T, obs_dim), or a dict of (T, ...) arrays by input name
    act: np.ndarray
    success: bool
    seed: int


def run_episode(env: gym.Env, policy: Policy, seed: int) -> Episode:
    """Roll `policy` out from `env.reset(seed=seed)` until success or the time limit.

    A grouped env's dict observation reaches `policy` as a dict of one-row batches.
    NaN/Inf actions are refused with the step at which they appeared.
    """
    obs, info = env.reset(seed=seed)
    observations, actions = [], []
    while True:
        action = np.asarray(policy(_batch(obs)), dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"policy returned a non-finite action {action.tolist()} at step "
                             f"{len(actions)} of the episode with seed {seed}")
        observations.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        if info.get("is_success") or terminated or truncated:
            break
    return Episode(_stack(observations), np.stack(actions), bool(info.get("is_success")), seed)


def _batch(obs):
    return {k: v[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]


def _stack(observations: list):
    if observations and isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def episode_seed(base: int, task_index: int, episode: int) -> int:
    """A distinct, reproducible seed per (run seed, task, episode)."""
    return int(base) * 1_000_003 + task_index * 100_003 + episode


def task_index(cfg, task: str, position: int) -> int:
    """`task`'s index for `episode_seed`: its place in the config's `tasks + held_out`.

    A task the config does not name (an extra held-out task asked for at eval time) comes
    after them, at `position`, its place in the list asked for; so re-evaluating a config's
    task, alone or among others, replays the eval stage's episodes.
    """
    order = cfg.tasks + cfg.held_out
    return order.index(task) if task in order else len(order) + position

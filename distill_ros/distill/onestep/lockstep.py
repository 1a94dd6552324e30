"""Evaluate a chunk planner on many episodes at once: one batched plan for every live episode.

`ChunkedPolicy` runs one episode at a time, so a 100-step DDPM teacher pays its 100
denoiser passes per plan per episode. Here the episodes of a task run in lockstep: they
all start at tick 0, so every live episode re-plans at the same ticks (every `n_exec`),
and one planner call at batch N serves them all. Per episode this is exactly what the
synchronous `ChunkedPolicy` does: the history is the last `obs_history` frames, oldest
first, with the episode's first frame repeated into the missing past; a plan's first
`n_exec` actions are executed; an episode ends at success, termination or truncation, as
in `rollout.run_episode`. The sampling noise comes from one generator per block of
episodes, seeded from the eval seed and the task, so a rerun gives the same table.

A per-tick policy (a demonstrator, the BC MLP) is the special case horizon = n_exec = 1.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from distill_ros.tasks.base import make_env

#: (B, obs_history * obs_dim) physical history, noise source -> (B, H, act_dim) chunk
Planner = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Chunking:
    """How a planner is run: H actions per plan, `n_exec` executed, `obs_history` frames."""

    horizon: int = 1
    n_exec: int = 1
    obs_history: int = 1


def per_tick(act: Callable[[np.ndarray], np.ndarray]) -> Planner:
    """A (B, obs_dim) -> (B, act_dim) policy as a planner of one-action chunks."""
    return lambda obs, rng: np.asarray(act(obs), np.float32)[:, None, :]


def lockstep_success(family: str, task: str, planner: Planner, chunking: Chunking,
                     seeds: Sequence[int], noise_seed: int, block: int = 256) -> np.ndarray:
    """Success (bool per seed) of `planner` on `task`'s episodes `seeds`, `block` at a time."""
    out = np.zeros(len(seeds), bool)
    for start in range(0, len(seeds), block):
        rng = np.random.default_rng([noise_seed, start])
        part = list(seeds[start:start + block])
        out[start:start + len(part)] = _run_block(family, task, planner, chunking, part, rng)
    return out


def _run_block(family: str, task: str, planner: Planner, c: Chunking, seeds: list[int],
               rng: np.random.Generator) -> np.ndarray:
    envs = [make_env(family, task) for _ in seeds]
    try:
        obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds)])
        history = deque([obs] * c.obs_history, maxlen=c.obs_history)
        alive = np.ones(len(seeds), bool)
        success = np.zeros(len(seeds), bool)
        tick, chunk = 0, np.zeros(0)
        while alive.any():
            live = np.flatnonzero(alive)
            if tick % c.n_exec == 0:
                rows = np.concatenate(list(history), axis=1)[live]
                plan = np.asarray(planner(rows, rng), np.float32)
                chunk = np.zeros((len(seeds),) + plan.shape[1:], np.float32)
                chunk[live] = plan
            obs = obs.copy()
            for i in live:
                action = chunk[i, tick % c.n_exec]
                if not np.all(np.isfinite(action)):
                    raise ValueError(f"policy returned a non-finite action {action.tolist()} "
                                     f"at step {tick} of the episode with seed {seeds[i]}")
                obs[i], _, terminated, truncated, info = envs[i].step(action)
                if info.get("is_success") or terminated or truncated:
                    alive[i], success[i] = False, bool(info.get("is_success"))
            history.append(obs)
            tick += 1
        return success
    finally:
        for env in envs:
            env.close()

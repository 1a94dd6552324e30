"""Families whose environments step in batches on a device (Isaac Gym, IsaacLab style).

A `VecEnv` holds `num_envs` environments, each on one task (per-env routing: each env's
teacher labels that env), and steps them all at once with torch tensors on `device`:
`step(actions)` takes ``(num_envs, act_dim)`` and returns ``obs (num_envs, obs_dim)``,
``reward (num_envs,)``, ``done (num_envs,)`` (bool) and an info dict of tensors. An env
whose episode ended is reset inside `step`, so the returned observation of a done env is
the first one of its next episode, as Isaac Gym's `VecTask` does; ``info["is_success"]``
and ``info["time_outs"]`` describe the episode that ended.

A `VecTaskFamily` is the batched counterpart of `tasks.base.TaskFamily`: the same names and
layouts, with `make_vec(tasks, seeds, device)` in place of `make(task)`. `VecEnv` is the
protocol (a structural type): an Isaac Gym task needs only a thin adapter to follow it.
`tasks.toy_torch` is the reference implementation; `tasks.isaacgym_adapter` wraps an Isaac
Gym `VecTask`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import torch

from distill_ros.spec import Spec

StepResult = tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


@runtime_checkable
class VecEnv(Protocol):
    """A batch of environments stepped together on one device."""

    num_envs: int
    device: torch.device

    def reset(self) -> torch.Tensor:
        """Reset every env; the observations, ``(num_envs, obs_dim)``."""

    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply ``(num_envs, act_dim)`` actions: obs, reward, done, info (done envs reset)."""


@dataclass(frozen=True)
class VecTaskFamily:
    """A task family whose environments come as one batched `VecEnv`.

    The batched counterpart of `tasks.base.TaskFamily` (a record, like it): the same names
    and layouts, and `make(tasks, seeds, device)` building any object that follows the
    `VecEnv` protocol.
    """

    name: str
    tasks: tuple[str, ...]
    obs_spec: Spec
    act_spec: Spec
    control_rate_hz: float
    max_episode_steps: int
    make: Callable[..., VecEnv]

    def make_vec(self, tasks: Sequence[str], seeds: Sequence[int],
                 device: str | torch.device = "cpu") -> VecEnv:
        """One env per entry of `tasks` (env i seeded with ``seeds[i]``) on `device`."""
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise ValueError(f"unknown {self.name} task(s) {unknown}; valid choices: "
                             f"{list(self.tasks)}")
        if len(seeds) != len(tasks):
            raise ValueError(f"make_vec needs one seed per env: {len(tasks)} tasks, "
                             f"{len(seeds)} seeds")
        return self.make(tasks, seeds, device)

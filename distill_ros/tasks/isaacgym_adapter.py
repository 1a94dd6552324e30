"""An Isaac Gym `VecTask` (IsaacGymEnvs) as a `tasks.vec.VecEnv` / `VecTaskFamily`.

Isaac Gym must be imported before torch, so import this module first in a program that
uses it. Its types come from `isaacgym-stubs` (``pip install 'distill_ros[isaacgym]'``);
Isaac Gym itself is NVIDIA's download (Preview 4), not on PyPI.

What IsaacGymEnvs' `VecTask` gives: ``reset() -> {"obs": (num_envs, num_obs)}``, and
``step(actions) -> (obs_dict, rew_buf, reset_buf, extras)`` where the envs in `reset_buf`
were reset inside the step and ``extras["time_outs"]`` marks the time limits. Success is
task-specific (e.g. ``extras["successes"]`` in the hand tasks), so its key is given here.
Isaac Gym seeds the whole simulation with one number: `make_vec` passes ``seeds[0]``;
per-env seeds, as `toy_torch` honours them, cannot be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

try:
    from isaacgym import gymapi
except ImportError as err:  # the stubs alone do not make `isaacgym` importable
    raise ImportError(
        "distill_ros.tasks.isaacgym_adapter needs NVIDIA Isaac Gym (Preview 4: download it "
        "from developer.nvidia.com/isaac-gym, then pip install -e isaacgym/python) and "
        "its type stubs: pip install 'distill_ros[isaacgym]'") from err

import torch

from distill_ros.spec import Spec
from distill_ros.tasks.vec import StepResult, VecTaskFamily


#: what `VecTask.step` returns: obs dict, rewards, resets, extras
IsaacGymStep = tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict[str, Any]]


class IsaacGymVecTask(Protocol):
    """What the adapter uses of an IsaacGymEnvs `VecTask`."""

    gym: gymapi.Gym
    sim: gymapi.Sim
    num_envs: int
    num_obs: int
    num_actions: int
    device: str

    def reset(self) -> dict[str, torch.Tensor]:
        """Reset every env; ``{"obs": ...}``."""

    def step(self, actions: torch.Tensor) -> IsaacGymStep:
        """Observations, rewards, resets and extras after one control step."""


class IsaacGymVecEnv:
    """A `VecEnv` over a `VecTask`: tensors stay on the task's device."""

    def __init__(self, task: IsaacGymVecTask, success_key: Optional[str] = None,
                 obs_key: str = "obs") -> None:
        self.task, self.success_key, self.obs_key = task, success_key, obs_key
        self.num_envs, self.device = task.num_envs, torch.device(task.device)

    def reset(self) -> torch.Tensor:
        """Reset every env; the observations."""
        return self.task.reset()[self.obs_key]

    def step(self, actions: torch.Tensor) -> StepResult:
        """One control step; the envs that ended were reset inside it."""
        obs, reward, resets, extras = self.task.step(actions)
        done = resets.bool()
        empty = torch.zeros_like(done)
        info = {"time_outs": extras.get("time_outs", empty).bool(),
                "is_success": (extras[self.success_key].bool() if self.success_key
                               else empty)}
        return obs[self.obs_key], reward, done, info


@dataclass(frozen=True)
class IsaacGymTasks:
    """How to build the `VecTask` for a batch of tasks (one number seeds the whole sim)."""

    make_task: Callable[[Sequence[str], int, str], IsaacGymVecTask]
    success_key: Optional[str] = None

    def __call__(self, tasks: Sequence[str], seeds: Sequence[int],
                 device: str | torch.device = "cuda:0") -> IsaacGymVecEnv:
        """`make_task(tasks, seeds[0], device)` wrapped."""
        return IsaacGymVecEnv(self.make_task(tasks, int(seeds[0]), str(device)),
                              self.success_key)


def isaacgym_family(name: str, tasks: Sequence[str], obs_spec: Spec, act_spec: Spec,
                    control_rate_hz: float, max_episode_steps: int,
                    make_task: Callable[[Sequence[str], int, str], IsaacGymVecTask],
                    success_key: Optional[str] = None) -> VecTaskFamily:
    """A `VecTaskFamily` whose envs are one Isaac Gym `VecTask` built by `make_task`."""
    return VecTaskFamily(name, tuple(tasks), obs_spec, act_spec, control_rate_hz,
                         max_episode_steps, IsaacGymTasks(make_task, success_key))

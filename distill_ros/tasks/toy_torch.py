"""The toy family as one batched torch environment (a `VecTaskFamily`, `tasks.vec`).

The point masses move, are rewarded, succeed and time out in torch on any device, all
envs in one tensor operation per step, as an Isaac Gym `VecTask` does. Each env holds one
task and its own numpy generator, seeded as `ToyEnv.reset(seed=...)` seeds it: an episode
start (9 numbers) is drawn on the host with `toy.draw_start`, so env i with seed s replays,
step for step, the episodes of `ToyEnv(task).reset(seed=s)` followed by plain `reset()`s.
Observations are the flat ``state`` vector (float32); the state is float64 like the numpy
env's. Used to test the protocol, since Isaac Gym cannot be installed here.
"""

from __future__ import annotations

from typing import Sequence

import torch
from gymnasium.utils.seeding import np_random

from distill_ros.tasks import toy
from distill_ros.tasks.vec import StepResult, VecTaskFamily


class ToyVecEnv:
    """`len(tasks)` toy envs on `device`; env i runs ``tasks[i]`` from ``seeds[i]``."""

    def __init__(self, tasks: Sequence[str], seeds: Sequence[int],
                 device: str | torch.device = "cpu", mask_prob: float = 0.0,
                 max_episode_steps: int = toy.EPISODE_STEPS) -> None:
        if not 0.0 <= mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in [0, 1), got {mask_prob}")
        self.num_envs, self.device = len(tasks), torch.device(device)
        self.tasks, self.mask_prob = tuple(tasks), mask_prob
        self.max_episode_steps = max_episode_steps
        self._centres = [toy.goal_centre(t) for t in self.tasks]
        self._rngs = [np_random(int(s))[0] for s in seeds]
        zeros = torch.zeros(self.num_envs, 3, dtype=torch.float64, device=self.device)
        self.mass, self.goal, self.mask = zeros.clone(), zeros.clone(), zeros.clone()
        self.steps = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.success = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def reset(self) -> torch.Tensor:
        """Start a new episode in every env; the observations."""
        self._reset(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self._observe()

    def step(self, actions: torch.Tensor) -> StepResult:
        """Velocity x DT for every env; ended episodes restart (their next first obs)."""
        a = torch.as_tensor(actions, device=self.device).to(torch.float64)
        if a.shape != (self.num_envs, 3) or not bool(torch.isfinite(a).all()):
            raise ValueError(f"actions must be ({self.num_envs}, 3) finite velocities, got "
                             f"shape {tuple(a.shape)}")
        self.mass = self.mass + a.clamp(-toy.MAX_SPEED, toy.MAX_SPEED) * toy.DT
        self.steps += 1
        error = torch.linalg.vector_norm((self.goal - self.mass) * self.mask, dim=1)
        self.success |= error < toy.SUCCESS_RADIUS
        done = self.steps >= self.max_episode_steps  # time limit only, as in ToyEnv
        info = {"is_success": self.success.clone(), "time_outs": done.clone()}
        self._reset(done)
        return self._observe(), -error, done, info

    def _reset(self, which: torch.Tensor) -> None:
        """New starts for the envs in the boolean mask `which` (drawn on the host)."""
        for i in torch.nonzero(which).flatten().tolist():
            start = toy.draw_start(self._rngs[i], self._centres[i], self.mask_prob)
            for field, value in zip((self.mass, self.goal, self.mask), start):
                field[i] = torch.from_numpy(value).to(self.device)
        self.steps[which] = 0
        self.success[which] = False

    def _observe(self) -> torch.Tensor:
        return torch.cat([self.mass, self.goal, self.goal - self.mass], 1).to(torch.float32)


def expert_actions(obs: torch.Tensor, gain: float = 8.0) -> torch.Tensor:
    """`toy.expert_action` on a batch of state tensors, on their device."""
    return (gain * obs[:, 6:9]).clamp(-toy.MAX_SPEED, toy.MAX_SPEED)


VEC_FAMILY = VecTaskFamily(name="toy", tasks=toy.TASKS, obs_spec=toy.OBS_SPEC,
                           act_spec=toy.ACT_SPEC, control_rate_hz=1.0 / toy.DT,
                           max_episode_steps=toy.EPISODE_STEPS, make=ToyVecEnv)

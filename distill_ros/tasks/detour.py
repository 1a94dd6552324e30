"""The detour family: reach a goal past a round post, going round it on the left or right.

A planar point reacher (velocity commands, 20 Hz) starts in front of a post that stands
between it and its goal. Touching the post ends the episode as a failure. Both sides of
the post are equally good; which one a demonstration takes is chosen per episode by the
demonstrators (`LeftDetourExpert` / `RightDetourExpert`, alternated episode by episode by
`onestep.demonstrators`), never by anything in the observation. So the data is truly
bimodal: from the same start, half the demonstrations move up-right and half down-right.
An MSE-trained behaviour-cloning policy averages the two into "straight ahead", into the
post; a generative policy (DDPM, OneDP) commits to one side and passes. This is the
Push-T-style failure of BC that Diffusion Policy (Chi et al. 2023) and OneDP (Wang et al.
2024) are about, in a task that runs at thousands of steps per second.

Kinematic and pure numpy (no pybullet bodies): the geometry is a disc and a point, so an
exact distance test is the collision check, and collecting or evaluating costs nothing
next to the diffusion models (see docs/design-notes.md, "Detour family").

Observation (7, metres, world frame): reacher x, y; goal x, y; post x, y; post radius.
Action (2, m/s, world frame): vx, vy, each clipped to +-MAX_SPEED.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from distill_ros.spec import Spec

DT = 0.05                 # s per control step (20 Hz)
MAX_SPEED = 1.0           # m/s per axis
EPISODE_STEPS = 50
SUCCESS_RADIUS = 0.05     # m, reacher to goal
REACHER_RADIUS = 0.02     # m; contact when centre distance < post radius + this
POST_X, GOAL_X = 0.35, 0.7  # m, nominal positions along the corridor
CLEARANCE = 0.12          # m, scripted experts' gap between the post's edge and their waypoint
#: task -> post radius (m)
POST_RADIUS = {"post": 0.12, "pillar": 0.16}
TASKS = tuple(POST_RADIUS)

OBS_SPEC = Spec(
    names=("reacher_x", "reacher_y", "goal_x", "goal_y", "post_x", "post_y", "post_radius"),
    units="m (world frame)",
)
ACT_SPEC = Spec(names=("vx", "vy"), low=(-MAX_SPEED,) * 2, high=(MAX_SPEED,) * 2,
                units="m/s (world frame)")


class DetourEnv(gym.Env):
    """Reach within 5 cm of the goal without touching the post; contact ends the episode.

    Args:
        task: ``post`` (radius 12 cm) or ``pillar`` (16 cm).
        max_episode_steps: steps before truncation.
    """

    metadata = {"render_modes": [], "render_fps": 1.0 / DT}

    def __init__(self, task: str, max_episode_steps: int = EPISODE_STEPS) -> None:
        if task not in POST_RADIUS:
            raise ValueError(f"unknown detour task {task!r}; valid choices: {list(TASKS)}")
        self.task, self.radius = task, POST_RADIUS[task]
        self.max_episode_steps = max_episode_steps
        self.action_space = gym.spaces.Box(-MAX_SPEED, MAX_SPEED, (2,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (7,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start, post and goal jittered around the corridor's centre line, all from `seed`."""
        super().reset(seed=seed)
        rng = self.np_random
        self.pos = rng.uniform([-0.03, -0.04], [0.03, 0.04])
        self.post = np.array([POST_X, 0.0]) + rng.uniform(-0.02, 0.02, 2)
        self.goal = np.array([GOAL_X, 0.0]) + rng.uniform([-0.03, -0.04], [0.03, 0.04])
        self.steps, self.success, self.collided = 0, False, False
        return self._observe(), {"is_success": False, "collision": False}

    def step(self, action):
        """Move by velocity x DT; touching the post terminates the episode unsuccessfully."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 2 finite velocities (vx, vy), got {action!r}")
        start = self.pos
        self.pos = start + np.clip(a, -MAX_SPEED, MAX_SPEED) * DT
        self.steps += 1
        # swept test: the closest point of this step's segment to the post's centre
        self.collided = segment_distance(start, self.pos, self.post) \
            < self.radius + REACHER_RADIUS
        error = float(np.linalg.norm(self.goal - self.pos))
        self.success = not self.collided and (self.success or error < SUCCESS_RADIUS)
        truncated = self.steps >= self.max_episode_steps
        info = {"is_success": self.success, "collision": self.collided}
        return self._observe(), -error, self.collided, truncated, info

    def _observe(self) -> np.ndarray:
        return np.concatenate([self.pos, self.goal, self.post, [self.radius]]).astype(np.float32)


def segment_distance(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """Distance (m) from point `p` to the segment from `a` to `b`."""
    ab = b - a
    t = 0.0 if not ab.any() else float(np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.0))
    return float(np.linalg.norm(a + t * ab - p))


class DetourExpert(nn.Module):
    """Pass the post on `side` (+1: left, +y; -1: right, -y), then go to the goal.

    Stateless and TorchScript-able: while the reacher is short of the post's x it heads at
    full speed for a waypoint `CLEARANCE` beyond the post's edge on its side; past it, for
    the goal. Both straight legs clear the post for every start the env draws.
    """

    def __init__(self, side: float, gain: float = 10.0) -> None:
        super().__init__()
        if side not in (1.0, -1.0):
            raise ValueError(f"side must be +1.0 (left) or -1.0 (right), got {side!r}")
        self.side, self.gain, self.clearance, self.max_speed = side, gain, CLEARANCE, MAX_SPEED

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 7) detour observation -> (B, 2) velocity in m/s."""
        pos, goal, post, radius = obs[:, 0:2], obs[:, 2:4], obs[:, 4:6], obs[:, 6:7]
        waypoint = torch.cat([post[:, :1], post[:, 1:2] + self.side * (radius + self.clearance)],
                             dim=1)
        before = (pos[:, :1] < post[:, :1] - 0.01)
        target = torch.where(before, waypoint, goal)
        v = self.gain * (target - pos)
        # full speed along the leg (direction kept), slowing only near the goal
        scale = torch.clamp(v.abs().max(dim=1, keepdim=True).values, min=1e-6)
        v = torch.where(before, v / scale * self.max_speed, v)
        return torch.clamp(v, -self.max_speed, self.max_speed)


#: built-in demonstrators by name, for `onestep.demonstrators` on this family
SCRIPTED_EXPERTS = {
    "detour_left": lambda: DetourExpert(1.0),
    "detour_right": lambda: DetourExpert(-1.0),
}

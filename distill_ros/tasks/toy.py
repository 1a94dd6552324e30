"""A toy family for tests that learn in seconds: a point mass reaching a per-task goal.

Pure numpy, thousands of steps per second, seeded like every family (same seed, same
episode); the idea of stable-baselines3's `IdentityEnv`, with named observation groups so a
teacher and a student can read different groups of the same step:

- ``state`` (privileged vector, 9): mass position, goal position, goal minus mass (m).
- ``proprio`` (vector, 3): the mass position only (m).
- ``points`` (points, N x 4): x, y, z, label; half the points scattered around the goal
  (label 1), half around the mass (label 0), so the goal is seen only through the cloud.
- ``command`` (command, 3) with ``command_mask`` (3): the goal as a commanded position; a
  masked axis (0) is not commanded (value 0) and not required for success.

`ToyEnv(task)` returns the flat ``state`` vector (a `Box`), so the family runs in today's
flat pipeline; `ToyEnv(task, groups=(...))` returns a dict of those groups (a `Dict`).
"""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np

from distill_ros.spec import Group, ObsSpec, Spec
from distill_ros.tasks.base import TaskFamily

DT = 0.05                 # s per control step (20 Hz)
MAX_SPEED = 1.0           # m/s per axis
EPISODE_STEPS = 40
SUCCESS_RADIUS = 0.05     # m, over the commanded axes
POINT_SPREAD = 0.01       # m, standard deviation of a cloud around its centre
N_POINTS = 32
TASKS = tuple(f"goal_{k}" for k in range(8))

OBS_SPEC = Spec(
    names=("mass_x", "mass_y", "mass_z", "goal_x", "goal_y", "goal_z",
           "to_goal_x", "to_goal_y", "to_goal_z"),
    units="m (world frame)",
)
ACT_SPEC = Spec(names=("vx", "vy", "vz"), low=(-MAX_SPEED,) * 3, high=(MAX_SPEED,) * 3,
                units="m/s (world frame)")
#: group -> (kind, channel names); points have N_POINTS rows (or the env's n_points)
GROUPS = {
    "state": ("vector", OBS_SPEC.names),
    "proprio": ("vector", ("mass_x", "mass_y", "mass_z")),
    "points": ("points", ("x", "y", "z", "label")),
    "command": ("command", ("goal_x", "goal_y", "goal_z")),
}


def obs_groups(groups: Sequence[str] = tuple(GROUPS), n_points: int = N_POINTS) -> ObsSpec:
    """The grouped spec of `ToyEnv(task, groups, n_points)`'s observation dict."""
    out = []
    for name in groups:
        kind, channels = GROUPS[name]
        units = "0/1 label" if kind == "points" else "m (world frame)"
        out.append(Group(name, kind, Spec(tuple(channels), units=units),
                         n_points if kind == "points" else 0))
    return ObsSpec(tuple(out))


def goal_centre(task: str) -> np.ndarray:
    """Task k's goal: on a 0.5 m circle, alternating heights (m)."""
    if task not in TASKS:
        raise ValueError(f"unknown toy task {task!r}; valid choices: {list(TASKS)}")
    k = TASKS.index(task)
    angle = 2 * np.pi * k / len(TASKS)
    return np.array([0.5 * np.cos(angle), 0.5 * np.sin(angle), 0.2 + 0.1 * (k % 2)])


def draw_start(rng: np.random.Generator, centre: np.ndarray,
               mask_prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An episode's start from `rng`: mass, goal (m) and command mask (also `toy_torch`'s)."""
    mass = rng.uniform(-0.1, 0.1, 3)
    goal = centre + rng.uniform(-0.05, 0.05, 3)
    mask = (rng.uniform(size=3) >= mask_prob).astype(np.float64)
    if not mask.any():
        mask[rng.integers(3)] = 1.0  # at least one axis is commanded
    return mass, goal, mask


class ToyEnv(gym.Env):
    """Move a point mass (velocity commands) to within 5 cm of the task's goal.

    Args:
        task: ``goal_0`` ... ``goal_7``.
        groups: observation groups to return as a dict; empty: the flat ``state`` vector.
        n_points: points per cloud (half goal, half mass).
        mask_prob: chance that each goal axis is left out of the command (and of success).
        max_episode_steps: steps before truncation.
    """

    metadata = {"render_modes": [], "render_fps": 1.0 / DT}

    def __init__(self, task: str, groups: Sequence[str] = (), n_points: int = N_POINTS,
                 mask_prob: float = 0.0, max_episode_steps: int = EPISODE_STEPS) -> None:
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown toy observation group(s) {unknown}; valid: "
                             f"{list(GROUPS)}")
        if n_points < 2 or n_points % 2:
            raise ValueError(f"n_points must be an even number >= 2, got {n_points}")
        if not 0.0 <= mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in [0, 1), got {mask_prob}")
        self.task, self.centre = task, goal_centre(task)
        self.groups, self.n_points, self.mask_prob = tuple(groups), n_points, mask_prob
        self.max_episode_steps = max_episode_steps
        self.action_space = gym.spaces.Box(-MAX_SPEED, MAX_SPEED, (3,), np.float32)
        box = {"state": (9,), "proprio": (3,), "points": (n_points, 4), "command": (3,),
               "command_mask": (3,)}
        if self.groups:
            keys = [k for g in self.groups for k in ((g, "command_mask") if g == "command"
                                                     else (g,))]
            self.observation_space = gym.spaces.Dict(
                {k: gym.spaces.Box(-np.inf, np.inf, box[k], np.float32) for k in keys})
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (9,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Mass near the origin, goal near the task's centre, axes masked, all from `seed`."""
        super().reset(seed=seed)
        self.mass, self.goal, self.mask = draw_start(self.np_random, self.centre,
                                                     self.mask_prob)
        self.steps, self.success = 0, False
        return self._observe(), {"is_success": False}

    def step(self, action):
        """Move by velocity x DT for one control step."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 3 finite velocities (vx, vy, vz), got {action!r}")
        self.mass = self.mass + np.clip(a, -MAX_SPEED, MAX_SPEED) * DT
        self.steps += 1
        error = float(np.linalg.norm((self.goal - self.mass) * self.mask))
        self.success = self.success or error < SUCCESS_RADIUS
        truncated = self.steps >= self.max_episode_steps
        return self._observe(), -error, False, truncated, {"is_success": self.success}

    def _observe(self):
        state = np.concatenate([self.mass, self.goal, self.goal - self.mass]).astype(np.float32)
        if not self.groups:
            return state
        out = {}
        for group in self.groups:
            if group == "state":
                out["state"] = state
            elif group == "proprio":
                out["proprio"] = self.mass.astype(np.float32)
            elif group == "points":
                out["points"] = self._cloud()
            else:
                out["command"] = (self.goal * self.mask).astype(np.float32)
                out["command_mask"] = self.mask.astype(np.float32)
        return out

    def _cloud(self) -> np.ndarray:
        half = self.n_points // 2
        around = self.np_random.normal(0.0, POINT_SPREAD, (self.n_points, 3))
        xyz = np.concatenate([self.goal + around[:half], self.mass + around[half:]])
        label = np.repeat([1.0, 0.0], half)[:, None]
        return np.concatenate([xyz, label], axis=1).astype(np.float32)


def expert_action(obs: np.ndarray | dict, gain: float = 8.0) -> np.ndarray:
    """The analytic expert: velocity towards the (commanded) goal, (B, 3) in m/s.

    Takes a batch of flat ``state`` vectors (B, 9) or a dict with ``state`` or with
    ``proprio`` + ``command`` + ``command_mask`` (masked axes get no velocity).
    """
    if isinstance(obs, dict) and "state" not in obs:
        to_goal = (np.asarray(obs["command"]) - np.asarray(obs["proprio"])) \
            * np.asarray(obs["command_mask"])
    else:
        state = np.asarray(obs["state"] if isinstance(obs, dict) else obs)
        to_goal = state[..., 6:9]
    return np.clip(gain * to_goal, -MAX_SPEED, MAX_SPEED).astype(np.float32)


FAMILY = TaskFamily(
    name="toy",
    tasks=TASKS,
    make=lambda task, **kw: ToyEnv(task, **kw),
    obs_spec=OBS_SPEC,
    act_spec=ACT_SPEC,
    control_rate_hz=1.0 / DT,
    max_episode_steps=EPISODE_STEPS,
)

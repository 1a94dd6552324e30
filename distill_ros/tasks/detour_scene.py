"""The detour task seen as a robot: a planar point reacher on two prismatic joints.

``sim_robot`` drives it through the `tasks.scene.Scene` protocol: each control period it
applies the last velocity command with ``DetourEnv.step``, so the scene moves exactly as
the training and evaluation episodes do. The reacher's position is its joint state
(``slide_x``, ``slide_y``, m); goal and post are labelled features. Touching the post
stops the reacher where it touched (a crash, not a bounce) until the next reset; reaching
the goal is latched as success while the reacher keeps obeying commands. No ROS inside.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from distill_ros.tasks.detour import (ACT_SPEC, DT, OBS_SPEC, POST_RADIUS, REACHER_RADIUS,
                                      SUCCESS_RADIUS, DetourEnv)
from distill_ros.tasks.scene import Shape, set_by_name, success_color

JOINTS = ("slide_x", "slide_y")            # prismatic, m, world frame
JOINT_OBS = ("reacher_x", "reacher_y")     # observation elements that are joint positions
TRAIL_POINTS = 400                         # positions kept for the trail marker (20 s)
POST_HEIGHT = 0.1                          # m, drawn only: the task is planar
POST_HIT_COLOR = (0.9, 0.1, 0.1, 0.9)
POST_COLOR = (0.4, 0.4, 0.45, 1.0)


class DetourScene:
    """One detour episode per reset, endless in time (a robot has no episode end).

    Args:
        task: ``post`` or ``pillar`` (`tasks.detour.POST_RADIUS`).
        seed: seed of the first episode; each reset uses the next one.
    """

    def __init__(self, task: str, seed: int = 0) -> None:
        self.env = DetourEnv(task, max_episode_steps=2**31)
        self.task = task
        self.seed = seed - 1
        self.reset()

    def reset(self) -> int:
        """Start the next episode (next seed), still; return its seed."""
        self.seed += 1
        self.obs, _ = self.env.reset(seed=self.seed)
        self.command = np.zeros(ACT_SPEC.dim)
        self.velocity = np.zeros(ACT_SPEC.dim)
        self.steps, self.success, self.collided = 0, False, False
        self.trail = [self.env.pos.copy()]
        return self.seed

    def set_command(self, names: Sequence[str], values: Sequence[float]) -> None:
        """Set velocity elements by name (``vx``, ``vy``; m/s, world frame)."""
        set_by_name(self.command, ACT_SPEC, names, values)

    def step(self) -> None:
        """Advance one control period; after contact with the post the reacher stays put."""
        self.steps += 1
        if self.collided:
            self.velocity = np.zeros(ACT_SPEC.dim)
            return
        before = self.env.pos.copy()
        self.obs, _, _, _, info = self.env.step(self.command)
        self.collided, self.success = bool(info["collision"]), bool(info["is_success"])
        self.velocity = (self.env.pos - before) / DT
        self.trail = (self.trail + [self.env.pos.copy()])[-TRAIL_POINTS:]

    def joint_state(self) -> tuple[tuple[str, ...], list[float], list[float]]:
        """``(names, positions, velocities)`` of the two slides (m, m/s)."""
        return JOINTS, [float(v) for v in self.env.pos], [float(v) for v in self.velocity]

    def features(self) -> tuple[list[str], list[float]]:
        """Observation elements that are not joint positions: goal and post (m)."""
        pairs = [(n, float(v)) for n, v in zip(OBS_SPEC.names, self.obs) if n not in JOINT_OBS]
        return [n for n, _ in pairs], [v for _, v in pairs]

    def shapes(self) -> list[Shape]:
        """Post (red once hit), goal zone (green once reached), reacher and its trail."""
        x, y = (float(v) for v in self.env.pos)
        post, goal, radius = self.env.post, self.env.goal, POST_RADIUS[self.task]
        return [
            Shape(0, "cylinder", (float(post[0]), float(post[1]), POST_HEIGHT / 2),
                  scale=(2 * radius, 2 * radius, POST_HEIGHT),
                  color=POST_HIT_COLOR if self.collided else POST_COLOR),
            Shape(1, "cylinder", (float(goal[0]), float(goal[1]), 0.001),
                  scale=(2 * SUCCESS_RADIUS, 2 * SUCCESS_RADIUS, 0.002),
                  color=success_color(self.success)),
            Shape(2, "sphere", (x, y, REACHER_RADIUS),
                  scale=(2 * REACHER_RADIUS,) * 3, color=(0.2, 0.4, 0.9, 1.0)),
            Shape(3, "line_strip", scale=(0.005, 0.0, 0.0), color=(0.2, 0.4, 0.9, 0.6),
                  points=[(float(p[0]), float(p[1]), 0.0) for p in self.trail]),
        ]

    def point_cloud(self) -> None:
        """No camera: the observation is the reacher, goal and post positions."""
        return None

    def distance_to_goal(self) -> float:
        """Metres from the reacher to the goal."""
        return float(np.linalg.norm(self.env.goal - self.env.pos))

    def status(self) -> tuple[str, dict[str, Any]]:
        """Whether the goal was reached or the post hit, and the episode's figures."""
        message = ("hit the post" if self.collided else
                   "goal reached" if self.success else "reaching")
        return message, {"task": self.task, "seed": self.seed, "steps": self.steps,
                         "success": self.success, "collided": self.collided,
                         "goal_distance_m": round(self.distance_to_goal(), 4),
                         "side": self.side()}

    def side(self) -> str:
        """``left`` (+y) or ``right`` of the post where the trail crossed its x; else ``none``."""
        trail = np.array(self.trail)
        if trail[:, 0].max() < self.env.post[0]:
            return "none"
        at_post = trail[np.argmin(np.abs(trail[:, 0] - self.env.post[0]))]
        return "left" if at_post[1] > self.env.post[1] else "right"

    def close(self) -> None:
        """Nothing to release: the detour env is pure numpy."""
        self.env.close()

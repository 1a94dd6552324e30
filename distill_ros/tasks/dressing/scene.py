"""The dressing scene seen as a robot: a floating gripper, the person's arm and a depth camera.

``sim_robot`` steps `env.DressingEnv` unchanged, one control period per tick, with the last
gripper twist it was commanded. A robot driver would report the gripper's position as three
prismatic joints (``gripper_x/y/z``, m, world frame); every other element of the privileged
``state`` (the gripper's orientation, the arm's joints and polyline, the garment's key points,
the dressed ratio) is a labelled feature, so a student or a teacher can run from the topics.
The camera publishes the raw labelled cloud (x, y, z, label: 0 arm, 1 garment); the node that
runs the student preprocesses it exactly as training does (`runtime.pointcloud`). No ROS.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from distill_ros.spec import Spec
from distill_ros.tasks.dressing.env import SUCCESS_RATIO, DressingEnv
from distill_ros.tasks.dressing.garments import ring_indices
from distill_ros.tasks.scene import Shape, set_by_name, success_color

JOINTS = ("gripper_x", "gripper_y", "gripper_z")  # the gripper's position as joints (m)
SKIN, CLOTH, GREY = (0.9, 0.7, 0.6, 1.0), (0.2, 0.4, 0.9, 0.8), (0.7, 0.7, 0.7, 1.0)


class DressingScene:
    """One dressing episode driven by gripper twist commands; endless until reset.

    Args:
        env: the dressing env of one task (``tasks.dressing.env.DressingEnv``), flat state.
        obs_spec: the state's layout; act_spec: the twist's (``family.OBS_SPEC``, ``ACT_SPEC``).
        seed: seed of the first episode; each reset uses the next one.
    """

    def __init__(self, env: DressingEnv, obs_spec: Spec, act_spec: Spec, seed: int = 0) -> None:
        if env.groups:
            raise ValueError(f"the dressing scene steps the env's flat state; make the env "
                             f"without groups, got {list(env.groups)}")
        self.env, self.task, self.obs_spec, self.act_spec = env, env.task, obs_spec, act_spec
        self.seed = seed - 1
        self.reset()

    def reset(self) -> int:
        """Start the next episode (next seed), the gripper still; return its seed."""
        self.seed += 1
        self.state, _ = self.env.reset(seed=self.seed)
        self.command = np.zeros(self.act_spec.dim)
        self.steps, self.success, self.force = 0, False, 0.0
        return self.seed

    @property
    def ratio(self) -> float:
        """The dressed ratio now (0: the hand not yet in the sleeve, 1: up to the shoulder)."""
        return float(self.env.ratio)

    def set_command(self, names: Sequence[str], values: Sequence[float]) -> None:
        """Set twist elements by name (``ee_vx`` ... ``ee_wz``: m/s, rad/s, world frame)."""
        set_by_name(self.command, self.act_spec, names, values)

    def step(self) -> None:
        """Advance one control period (0.1 s of physics) with the current twist."""
        self.state, _, _, _, info = self.env.step(self.command)
        self.steps += 1
        self.success, self.force = bool(info["is_success"]), float(info["arm_force"])

    def joint_state(self) -> tuple[tuple[str, ...], list[float], list[float]]:
        """``(names, positions, velocities)`` of the gripper's position (m, m/s)."""
        env = self.env
        position, _ = env.gripper_pose()
        velocity, _ = env._pb.getBaseVelocity(env._gripper, physicsClientId=env._cid)
        return JOINTS, [float(v) for v in position], [float(v) for v in velocity]

    def features(self) -> tuple[list[str], list[float]]:
        """Every state element that is not a joint position, by name (`obs_spec`)."""
        pairs = [(n, float(v)) for n, v in zip(self.obs_spec.names, self.state)
                 if n not in JOINTS]
        return [n for n, _ in pairs], [v for _, v in pairs]

    def shapes(self) -> list[Shape]:
        """The arm's polyline, the garment (its opening ring apart), the gripper, the ratio."""
        env = self.env
        line = [tuple(p) for p in env.polyline]
        vertices = env.garment_vertices()
        ring = [tuple(p) for p in vertices[ring_indices(0)]]
        position, orientation = env.gripper_pose()
        shoulder = env.polyline[-1]
        return [
            Shape(0, "line_strip", points=line, scale=(0.02, 0.0, 0.0), color=SKIN,
                  ns="dressing"),
            Shape(1, "line_strip", points=ring + ring[:1], scale=(0.01, 0.0, 0.0),
                  color=success_color(self.success), ns="dressing"),
            Shape(2, "points", points=[tuple(p) for p in vertices], scale=(0.01, 0.01, 0.0),
                  color=CLOTH, ns="dressing"),
            Shape(3, "cube", position, orientation, scale=(0.04, 0.04, 0.02), color=GREY,
                  ns="dressing"),
            Shape(4, "text", (shoulder[0], shoulder[1], shoulder[2] + 0.25),
                  scale=(0.0, 0.0, 0.06), color=success_color(self.success),
                  text=f"dressed {100 * self.ratio:.0f}%", ns="dressing"),
        ]

    def point_cloud(self) -> np.ndarray:
        """(M, 4) float32 x, y, z, label the depth camera sees now (world frame, uncropped)."""
        return self.env.point_cloud().astype(np.float32)

    def status(self) -> tuple[str, dict[str, Any]]:
        """The dressed ratio against success, the force on the arm, the episode's figures."""
        done = "dressed" if self.success else "dressing"
        return (f"{done}: ratio {self.ratio:.2f} (success at {SUCCESS_RATIO:g}), arm force "
                f"{self.force:.1f} N",
                {"task": self.task, "seed": self.seed, "steps": self.steps,
                 "success": self.success, "garment": self.env.garment.name,
                 "dressed_ratio": self.ratio, "arm_force_n": self.force})

    def close(self) -> None:
        """Disconnect pybullet."""
        self.env.close()

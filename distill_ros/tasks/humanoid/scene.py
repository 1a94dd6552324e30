"""The humanoid seen as a robot: DeepMimic's character tracking a clip, for ``sim_robot``.

Each control period (30 Hz) holds the last 36 PD targets for 8 stable-PD physics steps at
240 Hz, exactly as `env.HumanoidImitationEnv` does (the scene drives that env). A fall (a
link other than the feet touches the ground) is counted and starts a new episode at once,
so a demo keeps running. Every episode starts in the clip's first frame, at rest in the
reference pose: a demo plays the clip from its beginning. No ROS inside.

What ``sim_robot`` publishes from it:

* ``joint_states``: revolute joints (knees, elbows) as one position each (rad); spherical
  joints (chest, neck, hips, ankles, shoulders) as three positions ``<joint>_x``, ``_y``,
  ``_z``, the components of the joint's rotation vector (axis times angle, rad, in the
  parent frame), with the joint's angular velocity (rad/s) about the same axes.
* ``~/features``: the 197 DeepMimic state values by name (the student's proprioception is
  all of them but ``phase``), plus ``clip_time``: seconds into the clip, which
  ``motion_command`` follows in its ``clock: sim`` mode.
* ``~/markers``: the six key bodies (head, hands, pelvis, feet) of the character (blue) and
  of the clip (orange, moved along the ground under the character's pelvis) as spheres, the
  character's links as points, and a status text.
  pybullet's world is y up; markers are turned into ROS's z-up ``world`` frame.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import numpy as np

from distill_ros.spec import Spec
from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.motion import Pose
from distill_ros.tasks.humanoid.skeleton import JOINTS, KEY_BODIES
from distill_ros.tasks.scene import set_by_name, Shape

log = logging.getLogger(__name__)

STAND_SECONDS = 5.0   # an episode succeeds once it tracked the clip this long without a fall
ACTUAL_COLOR = (0.15, 0.45, 1.0, 1.0)     # the simulated character's key bodies
REFERENCE_COLOR = (1.0, 0.55, 0.1, 0.6)   # the clip's key bodies
KEYPOINT_DIAMETER = 0.08  # m
CLIP_TIME = "clip_time"
_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # y-up -> z-up


def joint_names() -> list[str]:
    """``joint_states`` names: one per revolute joint, ``<joint>_x/_y/_z`` per spherical one."""
    names = []
    for joint in JOINTS:
        names += [f"{joint.name}_{a}" for a in "xyz"] if joint.dof == 3 else [joint.name]
    return names


def pose_action(pose: Pose) -> np.ndarray:
    """The 36 PD targets that hold `pose` (the inverse of `env.action_to_targets`).

    Spherical joints give (angle, unit axis), revolute joints their angle.
    """
    out = []
    for joint, q in zip(JOINTS, pose.joint_pos):
        if joint.dof == 3:
            rotvec = quat.to_rotvec(q)
            angle = float(np.linalg.norm(rotvec))
            axis = rotvec / angle if angle > 1e-9 else np.array([1.0, 0.0, 0.0])
            out += [angle, *axis]
        else:
            out.append(float(q[0]))
    return np.asarray(out, dtype=np.float64)


def z_up(points: np.ndarray) -> np.ndarray:
    """Points (..., 3) of pybullet's y-up world in ROS's z-up world frame."""
    return np.asarray(points, float) @ _Z_UP.T


class HumanoidScene:
    """One DeepMimic clip tracked by the simulated humanoid under PD-target commands.

    Args:
        env: a `HumanoidImitationEnv` of the clip (no episode end: ``max_seconds=inf``).
        obs_spec: its state layout (197 names); act_spec: its 36 PD-target names.
        seed: seed of the first episode; each reset (and each fall) takes the next one.
    """

    def __init__(self, env: Any, obs_spec: Spec, act_spec: Spec, seed: int = 0) -> None:
        self.env, self.obs_spec, self.act_spec = env, obs_spec, act_spec
        self.task = env.clip.name
        self.seed = seed - 1
        self.falls, self.total_steps, self.fresh_steps, self._fresh = 0, 0, 0, False
        self.links = [int(link) for link, _ in KEY_BODIES.values()]
        self._joint_names = joint_names()
        self.reset()

    def reset(self) -> int:
        """Start the next episode (next seed) in the clip's first frame; return its seed."""
        self.seed += 1
        self.obs, _ = self.env.reset(seed=self.seed, options={"start_time": 0.0})
        self.command = pose_action(self.env.clip.pose(self.env.time))
        self.body = self.env.sim.read()
        self.steps, self.success = 0, False
        self.reward, self.reward_sum = 1.0, 0.0
        return self.seed

    def set_command(self, names: Sequence[str], values: Sequence[float]) -> None:
        """Set PD targets by name (``chest/angle``, ``chest/axis_x``, ... ``left_elbow/angle``)."""
        set_by_name(self.command, self.act_spec, names, values)
        self._fresh = True

    def step(self) -> None:
        """Hold the PD targets for one control period; a fall starts the next episode."""
        self.fresh_steps += self._fresh   # a command arrived since the last period
        self._fresh = False
        self.obs, self.reward, fell, _, _ = self.env.step(self.command)
        self.steps += 1
        self.total_steps += 1
        self.reward_sum += self.reward
        self.body = self.env.sim.read()
        if fell:
            self.falls += 1
            log.info("%s: fell %.2f s into episode seed %d (fall %d); starting the next",
                     self.task, self.env.time, self.seed, self.falls)
            self.reset()
            return
        self.success = self.steps >= STAND_SECONDS * self.env.control_hz

    def joint_state(self) -> tuple[list[str], list[float], list[float]]:
        """``(names, positions, velocities)``: rotation-vector components per spherical joint."""
        positions, velocities = [], []
        for joint, q, v in zip(JOINTS, self.body.joint_pos, self.body.joint_vel):
            positions += quat.to_rotvec(q).tolist() if joint.dof == 3 else [float(q[0])]
            velocities += [float(x) for x in v]
        return self._joint_names, positions, velocities

    def features(self) -> tuple[list[str], list[float]]:
        """The 197 state values by name (phase included) and the clip time (s)."""
        return ([*self.obs_spec.names, CLIP_TIME],
                [*(float(v) for v in self.obs), float(self.env.time)])

    def keypoints(self) -> tuple[np.ndarray, np.ndarray]:
        """Key-body positions (6, 3) of the character and of the clip now (m, y-up world).

        The clip's are moved along the ground so that its pelvis is over the character's:
        the command is root-relative, and the character drifts from the clip's world path.
        """
        actual = self.body.link_pos[self.links]
        reference = self.env.kin.links(self.env.clip.pose(self.env.time))[0][self.links]
        pelvis = list(KEY_BODIES).index("pelvis")
        shift = actual[pelvis] - reference[pelvis]
        shift[1] = 0.0   # y is up: heights stay the clip's
        return actual, reference + shift

    def shapes(self) -> list[Shape]:
        """Key bodies of the character (blue) and the clip (orange), the links, a status."""
        actual, reference = (z_up(p) for p in self.keypoints())
        size = (KEYPOINT_DIAMETER,) * 3
        shapes = [Shape(i, "sphere", tuple(p), scale=size, color=ACTUAL_COLOR, ns="actual")
                  for i, p in enumerate(actual)]
        shapes += [Shape(i, "sphere", tuple(p), scale=size, color=REFERENCE_COLOR,
                         ns="reference") for i, p in enumerate(reference)]
        links = z_up(self.body.link_pos)
        shapes.append(Shape(0, "points", points=[tuple(p) for p in links],
                            scale=(0.04, 0.04, 0.04), color=(0.7, 0.7, 0.7, 1.0), ns="links"))
        head = actual[0] + np.array([0.0, 0.0, 0.3])
        shapes.append(Shape(0, "text", tuple(head), scale=(0.0, 0.0, 0.12),
                            color=(1.0, 1.0, 1.0, 1.0), ns="status",
                            text=f"{self.task}: reward {self.reward:.2f}, falls {self.falls}"))
        return shapes

    def point_cloud(self) -> None:
        """No camera on this robot."""
        return None

    def status(self) -> tuple[str, dict[str, Any]]:
        """The clip tracked, the imitation reward, falls so far and fresh-command periods."""
        message = (f"tracking {self.task} for {self.steps / self.env.control_hz:.1f} s, "
                   f"{self.falls} falls so far")
        mean = self.reward_sum / self.steps if self.steps else math.nan
        return message, {"task": self.task, "seed": self.seed, "steps": self.steps,
                         "clip_time_s": round(float(self.env.time), 4),
                         "imitation_reward": round(float(self.reward), 4),
                         "mean_imitation_reward": round(mean, 4), "falls": self.falls,
                         "total_steps": self.total_steps, "fresh_command_steps": self.fresh_steps,
                         "success": self.success}

    def close(self) -> None:
        """Disconnect pybullet."""
        self.env.close()

"""The grasp scene seen as a robot: joints, object pose and named features of ``GraspEnv``.

``sim_robot`` reuses the task's physics unchanged: each control period it applies the
last command with ``GraspEnv.step``. This module is the one place that reads the env's
pybullet handles, to report joint states and the object pose as a robot driver would.
The grasp family builds it (``tasks.grasp.make_scene``) and hands it the env and layouts,
so this module imports nothing of the family. No ROS inside.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from distill_ros.spec import Spec
from distill_ros.tasks.scene import Shape, set_by_name, success_color

JOINTS = ("ee_x", "ee_y", "ee_z", "finger_left", "finger_right")  # URDF order, prismatic, m
JOINT_OBS = ("palm_x", "palm_y", "palm_z")  # observation elements that are joint positions

# A depth camera over the table, looking at the workspace from the front and above
CAMERA_EYE, CAMERA_TARGET, CAMERA_FOV_DEG = (0.4, 0.0, 0.4), (0.0, 0.0, 0.03), 50.0
CAMERA_NEAR, CAMERA_FAR = 0.05, 2.0
CLOUD_BOX = np.array([[-0.3, -0.3, 0.004], [0.3, 0.3, 0.6]])  # kept points (m): no floor


class GraspScene:
    """One pybullet grasp episode driven by velocity/opening commands.

    Args:
        env: the grasp env (``tasks.grasp.GraspEnv``) of one object, e.g. ``"cube"``.
        obs_spec: its observation layout; act_spec: its command layout.
        seed: seed of the first episode; each reset uses the next one.
    """

    def __init__(self, env: Any, obs_spec: Spec, act_spec: Spec, seed: int = 0) -> None:
        self.env, self.obs_spec, self.act_spec = env, obs_spec, act_spec
        self.task = env.task
        self.seed = seed - 1
        self.command = np.zeros(act_spec.dim)
        self.reset()

    def reset(self) -> int:
        """Start the next episode (next seed); return its seed."""
        self.seed += 1
        self.obs, _ = self.env.reset(seed=self.seed)
        self.command = np.array([0.0, 0.0, 0.0, self.act_spec.high[-1]])  # still, gripper open
        self.steps, self.success, self.lift = 0, False, 0.0
        return self.seed

    def set_command(self, names: Sequence[str], values: Sequence[float]) -> None:
        """Set the command elements by name (``ee_vx`` ... ``gripper_opening``)."""
        set_by_name(self.command, self.act_spec, names, values)

    def step(self) -> None:
        """Advance one control period with the current command."""
        self.obs, _, _, _, info = self.env.step(self.command)
        self.steps += 1
        self.success, self.lift = bool(info["is_success"]), float(info["lift"])

    def joint_state(self) -> tuple[tuple[str, ...], list[float], list[float]]:
        """``(names, positions, velocities)`` of the gripper joints (m, m/s)."""
        env = self.env
        states = env._pb.getJointStates(env._robot, list(range(len(JOINTS))),
                                        physicsClientId=env._cid)
        return JOINTS, [s[0] for s in states], [s[1] for s in states]

    def features(self) -> tuple[list[str], list[float]]:
        """Observation elements that are not joint positions, by name (finger, object)."""
        pairs = [(n, float(v)) for n, v in zip(self.obs_spec.names, self.obs)
                 if n not in JOINT_OBS]
        return [n for n, _ in pairs], [v for _, v in pairs]

    def object_pose(self) -> tuple[list[float], list[float], list[float]]:
        """Object ``(position, quaternion xyzw, half extents)`` in the world frame (m)."""
        env = self.env
        pos, quat = env._pb.getBasePositionAndOrientation(env._obj, physicsClientId=env._cid)
        named = dict(zip(self.obs_spec.names, self.obs))
        return list(pos), list(quat), [float(named[f"obj_half_{a}"]) for a in "xyz"]

    def shapes(self) -> list[Shape]:
        """The object (green once held) and the gripper's palm and finger pads, for RViz."""
        position, quat, half = self.object_pose()
        names, q, _ = self.joint_state()
        joints = dict(zip(names, q))
        x, y, z = joints["ee_x"], joints["ee_y"], joints["ee_z"]
        finger = (0.01, 0.025, 0.06)  # URDF finger boxes, 4 cm below the palm, sliding on x
        grey = (0.7, 0.7, 0.7, 1.0)
        return [Shape(0, "cube", position, quat, [2 * h for h in half],
                      success_color(self.success)),
                Shape(1, "cube", (x, y, z), scale=(0.12, 0.04, 0.02), color=grey),
                Shape(2, "cube", (x - joints["finger_left"], y, z - 0.04), scale=finger,
                      color=grey),
                Shape(3, "cube", (x + joints["finger_right"], y, z - 0.04), scale=finger,
                      color=grey)]

    def status(self) -> tuple[str, dict[str, Any]]:
        """Whether the object is held, and the episode's figures."""
        return ("object grasped and held" if self.success else "grasping",
                {"task": self.task, "seed": self.seed, "steps": self.steps,
                 "success": self.success, "lift_m": self.lift})

    def point_cloud(self, width: int = 96, height: int = 72) -> np.ndarray:
        """Points (N, 3) in the world frame (m) that a depth camera sees of object and gripper.

        pybullet's CPU renderer (about 2 ms at 96x72) gives the depth buffer; each pixel is
        back-projected through the inverse of projection x view, and points outside
        ``CLOUD_BOX`` (the floor, the far background) are dropped.
        """
        env = self.env
        pb, cid = env._pb, env._cid
        view = pb.computeViewMatrix(CAMERA_EYE, CAMERA_TARGET, (0, 0, 1), physicsClientId=cid)
        proj = pb.computeProjectionMatrixFOV(CAMERA_FOV_DEG, width / height, CAMERA_NEAR,
                                             CAMERA_FAR, physicsClientId=cid)
        image = pb.getCameraImage(width, height, view, proj, renderer=pb.ER_TINY_RENDERER,
                                  flags=pb.ER_NO_SEGMENTATION_MASK, physicsClientId=cid)
        depth = np.reshape(np.asarray(image[3], np.float64), (height, width))
        u, v = np.meshgrid(2 * (np.arange(width) + 0.5) / width - 1,       # NDC x, right
                           1 - 2 * (np.arange(height) + 0.5) / height)     # NDC y, up
        ndc = np.stack([u, v, 2 * depth - 1, np.ones_like(u)], -1).reshape(-1, 4)
        # pybullet's matrices are column-major lists
        clip_from_world = (np.reshape(proj, (4, 4), order="F")
                           @ np.reshape(view, (4, 4), order="F"))
        world = ndc @ np.linalg.inv(clip_from_world).T
        points = world[:, :3] / world[:, 3:]
        keep = (depth.reshape(-1) < 1.0) & np.all(
            (points >= CLOUD_BOX[0]) & (points <= CLOUD_BOX[1]), axis=1)
        return points[keep].astype(np.float32)

    def close(self) -> None:
        """Disconnect pybullet."""
        self.env.close()

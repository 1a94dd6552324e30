"""Dress a seated person's arm: a floating gripper pulls a sleeve from the hand to the shoulder.

One episode: the arm is posed from the task's pose range, a garment is loaded as a pybullet
mass-spring soft body with its opening just beyond the fingertips, and the gripper holds
the opening's ring of vertices by soft-body anchors (a hoop, as a dressing aid holds a
sleeve open). The action is the gripper's velocity, linear and angular, with limits. The
reward pays progress along the arm (`geometry.progress`: the dressed ratio, signed before the
hand and lost if the opening leaves the arm), charges the opening's distance from the arm's
axis, and charges contact force on the arm above `FORCE_LIMIT`, read from pybullet's
soft-body contact points (the summed normal force, peak over the control period).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import gymnasium as gym
import numpy as np

from distill_ros.runtime.pointcloud import preprocess
from distill_ros.tasks.dressing import arm as arm_model
from distill_ros.tasks.dressing.camera import CLOUD, Camera, capture
from distill_ros.tasks.dressing.garments import (
    RINGS, TRAIN_GARMENTS, Garment, garment_file, get_garment, ring_indices)
from distill_ros.tasks.dressing.geometry import dressed_ratio, progress, project_onto_polyline
from distill_ros.tasks.dressing.poses import PoseRange, get_range

SIM_DT = 1.0 / 240.0          # s: the step the cloth was tried at
SUBSTEPS = 24                 # -> 10 Hz control
CONTROL_RATE_HZ = 1.0 / (SIM_DT * SUBSTEPS)
EPISODE_STEPS = 60            # 6 s of simulated time, 1,440 physics steps
MAX_SPEED = 0.25              # m/s, gripper linear velocity limit per axis
MAX_TURN = 1.0                # rad/s, gripper angular velocity limit per axis
SUCCESS_RATIO = 0.8
FORCE_LIMIT = 10.0            # N, summed contact normal force on the arm before a penalty
FORCE_WEIGHT = 0.05           # reward per newton above the limit
PROGRESS_WEIGHT = 10.0        # reward for the whole arm's length of progress
CENTRE_WEIGHT = 2.0           # reward per metre of the opening's centre off the arm's axis
LAG_LIMIT = 0.05              # m, the commanded pose stays this close to the gripper
GRIPPER_FORCE = 40.0          # N, the most the gripper's constraint pulls with
WORKSPACE = np.array([[-0.3, -1.0, 0.2], [1.3, 0.3, 1.6]])  # gripper limits, m, world frame
START_GAP = 0.03              # m, opening centre beyond the fingertip at the start
RATIO_SLACK = 0.03            # m, the opening surrounds the arm while its centre is within
#                               its radius plus this of the arm's axis
DIVERGED_STRETCH = 2.0        # a garment vertex farther than this x the garment's length
#                               from the gripper holding it: the cloth solver blew up
GROUPS = ("state", "proprio", "points")
_PER_CLIENT = ("_pb", "_cid", "_arm", "_cloth", "_gripper", "_grip")  # rebuilt on unpickling
STATE_DIM = 3 + 12 + 7 + 9 + 1


def parse_task(task: str) -> tuple[PoseRange, Garment | None]:
    """``"f0e1"``: pose range, garments drawn from training's; ``"f0e1@gown_long"``: fixed."""
    name, _, garment = task.partition("@")
    return get_range(name), (get_garment(garment) if garment else None)


class DressingEnv(gym.Env):
    """Pull a garment's opening from the hand past 80% of the arm. Same seed, same episode.

    Args:
        task: a pose range (``f<i>e<j>``), optionally ``@<garment>``.
        groups: observation groups to return as a dict (`GROUPS`); empty: the flat state.
        n_points: points per cloud for the ``points`` group.
        camera: the depth camera of the ``points`` group.
        max_episode_steps: control steps before truncation.
    """

    metadata = {"render_modes": [], "render_fps": CONTROL_RATE_HZ}

    def __init__(self, task: str, groups: Sequence[str] = (), n_points: int = CLOUD.n_points,
                 camera: Camera = Camera(), max_episode_steps: int = EPISODE_STEPS) -> None:
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown dressing observation group(s) {unknown}; valid: "
                             f"{list(GROUPS)}")
        self.task = task
        self.pose_range, self.fixed_garment = parse_task(task)
        self.groups, self.camera = tuple(groups), camera
        self.cloud = dataclasses.replace(CLOUD, n_points=n_points)
        self.max_episode_steps = max_episode_steps
        self.model = arm_model.ArmModel()
        high = np.array([MAX_SPEED] * 3 + [MAX_TURN] * 3, np.float32)
        self.action_space = gym.spaces.Box(-high, high)
        shapes = {"state": (STATE_DIM,), "proprio": (7,), "points": (n_points, 4)}
        box = {k: gym.spaces.Box(-np.inf, np.inf, shapes[k], np.float32) for k in shapes}
        self.observation_space = (gym.spaces.Dict({g: box[g] for g in self.groups})
                                  if self.groups else box["state"])
        import pybullet as pb

        self._pb = pb
        self._cid = pb.connect(pb.DIRECT)

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Rebuild the world: arm pose, garment and start offset from the seeded RNG."""
        super().reset(seed=seed)
        # what a pickled env replays: the generator as the episode began, and the actions
        self._episode_rng = copy.deepcopy(self.np_random.bit_generator.state)
        self._actions = []
        return self._start()

    def _start(self):
        rng = self.np_random
        self.q = self.pose_range.sample(rng)
        self.garment = self.fixed_garment or TRAIN_GARMENTS[rng.integers(len(TRAIN_GARMENTS))]
        self.polyline = arm_model.polyline(self.model, self.q)
        tip, wrist = self.polyline[0], self.polyline[1]
        out = (tip - wrist) / np.linalg.norm(tip - wrist)      # the hand's outward direction
        start = tip + out * START_GAP + rng.uniform(-0.01, 0.01, 3)
        self._build_world(start, _quat_z_to(out))
        for _ in range(SUBSTEPS // 2):        # let the cloth hang before the clock starts
            self._pb.stepSimulation(physicsClientId=self._cid)
        self._steps, self._success = 0, False
        self.ratio, self.progress, _ = self._measure()
        self.force = 0.0
        return self._observe(), {"is_success": False, "dressed_ratio": self.ratio}

    def step(self, action):
        """Move the gripper at the commanded twist for one control period (0.1 s)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (6,) or not np.all(np.isfinite(a)):
            raise ValueError("action must be 6 finite values (vx, vy, vz in m/s, wx, wy, wz in "
                             f"rad/s, world frame), got {action!r}")
        a = np.clip(a, self.action_space.low, self.action_space.high)
        self._actions.append(a)
        self._drive(a)
        self._steps += 1
        before = self.progress
        self.ratio, self.progress, off_axis = self._measure()
        self._success = self._success or self.ratio >= SUCCESS_RATIO
        reward = (PROGRESS_WEIGHT * (self.progress - before) - CENTRE_WEIGHT * off_axis
                  - FORCE_WEIGHT * max(0.0, self.force - FORCE_LIMIT))
        truncated = self._steps >= self.max_episode_steps
        diverged = self.diverged()
        if diverged:      # what was gained is lost, and nothing after a blow-up is physics
            reward = -PROGRESS_WEIGHT * max(self.progress, 0.0)
        return self._observe(), reward, diverged, truncated, {
            "is_success": self._success, "dressed_ratio": self.ratio, "arm_force": self.force,
            "diverged": diverged}

    # -- pickling: a teacher checkpoint holds its envs mid-episode (exact resume) -------------
    def __getstate__(self) -> dict:
        """Python state only; the deformable world is not saveable, so it is replayed."""
        return {k: v for k, v in self.__dict__.items() if k not in _PER_CLIENT}

    def __setstate__(self, state: dict) -> None:
        """A new physics client; mid-episode, the episode replayed from its start (bit-exact)."""
        self.__dict__.update(state)
        import pybullet as pb

        self._pb, self._cid = pb, pb.connect(pb.DIRECT)
        if "_episode_rng" in state:
            now = copy.deepcopy(self.np_random.bit_generator.state)
            self.np_random.bit_generator.state = copy.deepcopy(self._episode_rng)
            actions, self._actions = self._actions, []
            self._start()
            for a in actions:
                self.step(a)
            self.np_random.bit_generator.state = now

    def close(self) -> None:
        """Disconnect the physics client."""
        if self._cid is not None:
            self._pb.disconnect(physicsClientId=self._cid)
            self._cid = None

    # -- what the world shows -----------------------------------------------------------------
    def garment_vertices(self) -> np.ndarray:
        """(RINGS*AROUND, 3) garment vertex positions (m, world frame), opening ring first."""
        pb = self._pb
        _, verts = pb.getMeshData(self._cloth, -1, flags=pb.MESH_DATA_SIMULATION_MESH,
                                  physicsClientId=self._cid)
        return np.asarray(verts, dtype=np.float64)

    def key_points(self) -> np.ndarray:
        """(3, 3) centres of the opening, middle and cuff rings (m, world frame)."""
        v = self.garment_vertices()
        return np.stack([v[ring_indices(r)].mean(axis=0) for r in (0, RINGS // 2, RINGS - 1)])

    def gripper_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Gripper position (m) and orientation quaternion (x, y, z, w), world frame."""
        pos, orn = self._pb.getBasePositionAndOrientation(self._gripper,
                                                          physicsClientId=self._cid)
        return np.array(pos), np.array(orn)

    def arm_contact_force(self) -> float:
        """Summed normal force (N) of the garment's contact points on the arm, this step."""
        contacts = self._pb.getContactPoints(bodyA=self._arm, bodyB=self._cloth,
                                             physicsClientId=self._cid)
        return float(sum(c[9] for c in contacts))

    def diverged(self) -> bool:
        """Whether the soft-body solver blew up: cloth flung from the gripper, or NaN."""
        gap = np.linalg.norm(self.garment_vertices() - self.gripper_pose()[0], axis=1)
        return not (np.all(np.isfinite(gap))
                    and gap.max() < DIVERGED_STRETCH * self.garment.length)

    def point_cloud(self) -> np.ndarray:
        """(M, 4) labelled points the camera sees now, before preprocessing (m, world frame)."""
        return capture(self._pb, self._cid, self.camera, self._arm, self._cloth)

    # -- internals -----------------------------------------------------------------------------
    def _build_world(self, start: np.ndarray, orn: tuple) -> None:
        pb, cid, g = self._pb, self._cid, self.garment
        pb.resetSimulation(pb.RESET_USE_DEFORMABLE_WORLD, physicsClientId=cid)
        pb.setGravity(0, 0, -9.81, physicsClientId=cid)
        pb.setTimeStep(SIM_DT, physicsClientId=cid)
        self._arm = arm_model.build_arm(pb, cid, self.model)
        arm_model.set_pose(pb, cid, self._arm, self.q)
        self._cloth = pb.loadSoftBody(
            str(garment_file(g)), basePosition=start.tolist(), baseOrientation=orn,
            mass=g.mass, useMassSpring=1, useBendingSprings=1, useNeoHookean=0,
            springElasticStiffness=g.stiffness, springDampingStiffness=0.1,
            springBendingStiffness=2.0, frictionCoeff=g.friction, useSelfCollision=0,
            useFaceContact=1, collisionMargin=0.006, physicsClientId=cid)
        self._gripper = pb.createMultiBody(0.5, -1, -1, start.tolist(), orn, physicsClientId=cid)
        self._grip = pb.createConstraint(self._gripper, -1, -1, -1, pb.JOINT_FIXED, [0, 0, 0],
                                         [0, 0, 0], start.tolist(), childFrameOrientation=orn,
                                         physicsClientId=cid)
        for node in ring_indices(0):
            pb.createSoftBodyAnchor(self._cloth, int(node), self._gripper, -1,
                                    physicsClientId=cid)
        self._target_pos, self._target_orn = start.copy(), orn

    def _drive(self, a: np.ndarray) -> None:
        """Track the twist `a` for SUBSTEPS physics steps; keep the peak force on the arm."""
        pb, cid = self._pb, self._cid
        turn = pb.getQuaternionFromAxisAngle(a[3:] / max(np.linalg.norm(a[3:]), 1e-12),
                                             float(np.linalg.norm(a[3:])) * SIM_DT)
        self.force = 0.0
        for _ in range(SUBSTEPS):
            lag = np.clip(self._target_pos + a[:3] * SIM_DT, *WORKSPACE) - self.gripper_pose()[0]
            # a blocked gripper does not wind up: the commanded pose stays near the real one
            shrink = min(1.0, LAG_LIMIT / max(float(np.linalg.norm(lag)), 1e-9))
            self._target_pos = self.gripper_pose()[0] + lag * shrink
            self._target_orn = pb.multiplyTransforms([0, 0, 0], turn, [0, 0, 0],
                                                     self._target_orn)[1]
            pb.changeConstraint(self._grip, self._target_pos.tolist(), self._target_orn,
                                maxForce=GRIPPER_FORCE, physicsClientId=cid)
            pb.stepSimulation(physicsClientId=cid)
            self.force = max(self.force, self.arm_contact_force())

    def _measure(self) -> tuple[float, float, float]:
        """Dressed ratio, shaped progress and the opening's distance from the arm's axis (m)."""
        opening, gate = self.key_points()[0], self.garment.opening_radius + RATIO_SLACK
        _, closest = project_onto_polyline(self.polyline, opening, extend_start=True)
        return (dressed_ratio(self.polyline, opening, gate),
                progress(self.polyline, opening, gate), float(np.linalg.norm(opening - closest)))

    def _observe(self):
        pos, orn = self.gripper_pose()
        proprio = np.concatenate([pos, orn]).astype(np.float32)
        state = np.concatenate([self.q, self.polyline.ravel(), proprio,
                                self.key_points().ravel(), [self.ratio]]).astype(np.float32)
        if not self.groups:
            return state
        out = {"state": state, "proprio": proprio}
        if "points" in self.groups:
            out["points"] = preprocess(self.point_cloud(), self.cloud)
        return {g: out[g] for g in self.groups}


def _quat_z_to(direction: np.ndarray) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) turning +z onto the unit `direction` (shortest arc)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, direction)
    s, c = np.linalg.norm(axis), float(z @ direction)
    if s < 1e-9:
        return (0.0, 0.0, 0.0, 1.0) if c > 0 else (1.0, 0.0, 0.0, 0.0)
    half = np.arctan2(s, c) / 2
    return (*(axis / s * np.sin(half)), float(np.cos(half)))

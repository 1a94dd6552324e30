"""Per-object grasping (UniGraspTransformer's setting): a floating gripper lifts one object.

The gripper floats on x/y/z slides, as the Shadow hand floats in UniGraspTransformer: grasp
learning is isolated from arm kinematics, and a real arm tracks the same Cartesian velocity
command through its own controller. The observation describes the object by its pose and
axis-aligned extents only, never by name, so one student can serve every object and unseen ones.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

from distill_ros.spec import Spec
from distill_ros.tasks.base import TaskFamily
from distill_ros.tasks.grasp_objects import (  # noqa: F401  (GraspObject: part of this API)
    MAX_OPENING, OBJECTS, USER_OBJECTS, GraspObject, add_user_object, load_object)

SIM_DT = 1.0 / 240.0       # s, pybullet's default step
SUBSTEPS = 8               # sim steps per control step -> 30 Hz control
CONTROL_RATE_HZ = 1.0 / (SIM_DT * SUBSTEPS)
MAX_SPEED = 0.9            # m/s, end-effector velocity limit
FINGER_REACH = 0.055       # m, palm centre to 1.5 cm above the fingertips (down)
LIFT_SUCCESS = 0.10        # m, object must rise this much above where it rested...
HOLD_STEPS = 5             # ...for this many consecutive control steps
WORKSPACE = np.array([[-0.2, -0.2, 0.072], [0.2, 0.2, 0.4]])  # palm limits, m, world frame
EPISODE_STEPS = 60


OBS_SPEC = Spec(
    names=(
        "palm_x", "palm_y", "palm_z", "finger_opening",
        "obj_rel_x", "obj_rel_y", "obj_rel_z", "obj_x", "obj_y", "obj_z",
        "obj_half_x", "obj_half_y", "obj_half_z", "contact_left", "contact_right",
    ),
    units="m (world frame), contacts 0/1",
)
ACT_SPEC = Spec(
    names=("ee_vx", "ee_vy", "ee_vz", "gripper_opening"),
    low=(-MAX_SPEED, -MAX_SPEED, -MAX_SPEED, 0.0),
    high=(MAX_SPEED, MAX_SPEED, MAX_SPEED, MAX_OPENING),
    units="m/s (world frame), opening in m",
)
_PER_CLIENT = ("_pb", "_cid", "_robot", "_obj")  # rebuilt on unpickling
_ASSET = os.path.join(os.path.dirname(__file__), "assets", "gripper.urdf")


class GraspEnv(gym.Env):
    """Lift one object at least 10 cm and hold it. Seeded: same seed, same episode."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_RATE_HZ}

    def __init__(self, task: str, max_episode_steps: int = EPISODE_STEPS) -> None:
        if task not in OBJECTS and task not in USER_OBJECTS:
            raise ValueError(f"unknown grasp object {task!r}; valid choices: "
                             f"{[*OBJECTS, *USER_OBJECTS]}")
        self.task = task
        self.max_episode_steps = max_episode_steps
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_SPEC.dim,), np.float32)
        self.action_space = gym.spaces.Box(
            np.array(ACT_SPEC.low, np.float32), np.array(ACT_SPEC.high, np.float32))
        self._connect()

    def _connect(self, build: bool = True) -> None:
        """A new physics client; its world built unless the caller's `reset` will build it."""
        import pybullet as pb
        import pybullet_data

        self._pb = pb
        self._cid = pb.connect(pb.DIRECT)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self._cid)
        if build:
            self._build_world()

    def _build_world(self) -> None:
        """Empty the physics client, then load this task's scene: the same world every call."""
        self._pb.resetSimulation(physicsClientId=self._cid)
        self._load_scene(USER_OBJECTS.get(self.task) or OBJECTS[self.task])

    # -- pickling: a checkpoint can hold the env mid-episode (exact resume of training) ------
    def __getstate__(self) -> dict:
        """Python state; the physics is rebuilt on unpickling by replaying the episode.

        pybullet's saved states leave out solver caches: an env restored from one drifts
        (~1e-3 within 40 steps once the pads touch the object), while an episode replayed
        from its seed and actions in a fresh client matches bit for bit, because every
        reset starts from a fresh world (see `reset`).
        """
        return {k: v for k, v in self.__dict__.items() if k not in _PER_CLIENT}

    def __setstate__(self, state: dict) -> None:
        """A new physics client with the same scene, then the episode so far, replayed."""
        self.__dict__.update(state)
        episode = state.get("_episode")
        self._connect(build=episode is None)  # a replayed episode builds it in `reset`
        if episode is None:
            return
        now = self.np_random.bit_generator.state
        self.np_random.bit_generator.state = episode["rng"]
        actions = episode["actions"]
        self.reset()
        for action in actions:
            self.step(action)
        self.__dict__.update(state)  # the same values, and the same objects as pickled
        self.np_random.bit_generator.state = now

    def _load_scene(self, obj: GraspObject) -> None:
        pb, cid = self._pb, self._cid
        pb.setGravity(0, 0, -9.81, physicsClientId=cid)
        pb.setTimeStep(SIM_DT, physicsClientId=cid)
        pb.loadURDF("plane.urdf", physicsClientId=cid)
        self._robot = pb.loadURDF(_ASSET, useFixedBase=True, physicsClientId=cid)
        self._obj = load_object(pb, cid, obj, [0, 0, 0.5])
        for finger in (3, 4):
            pb.changeDynamics(self._robot, finger, lateralFriction=1.5, physicsClientId=cid)
        lo, _ = pb.getAABB(self._obj, physicsClientId=cid)
        self._rest_offset = 0.5 - lo[2] + 0.001  # base height that puts the object on the plane

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """A fresh world, then object and gripper placed from the seeded RNG.

        The world is rebuilt, not restored from a saved state: `restoreState` keeps the
        broadphase and contact caches, so a mesh object's episode depended ~1e-7 on the
        episodes before it, and a checkpointed env could not be replayed exactly. The
        rebuild costs ~6% of a 60-step episode.
        """
        super().reset(seed=seed)
        # what unpickling needs to replay this episode: the RNG before its draws, the actions
        self._episode = {"rng": self.np_random.bit_generator.state, "actions": []}
        pb, cid, rng = self._pb, self._cid, self.np_random
        self._build_world()
        obj_xy = rng.uniform(-0.04, 0.04, 2)
        yaw = rng.uniform(-np.pi, np.pi)
        pb.resetBasePositionAndOrientation(
            self._obj, [obj_xy[0], obj_xy[1], self._rest_offset],
            pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=cid)
        palm = np.array([*rng.uniform(-0.06, 0.06, 2), rng.uniform(0.2, 0.26)])
        for j, q in enumerate([*palm, MAX_OPENING / 2 + 0.005, MAX_OPENING / 2 + 0.005]):
            pb.resetJointState(self._robot, j, q, 0.0, physicsClientId=cid)
        self._target = palm.copy()
        self._opening = MAX_OPENING
        self._drive()
        for _ in range(24):  # let the object settle before the clock starts
            pb.stepSimulation(physicsClientId=cid)
        self._obj_rest_z = self._object_center()[2]
        self._steps = 0
        self._held = 0
        self._success = False
        return self._observe(), {"is_success": False}

    def step(self, action):
        """Apply a velocity/opening command for one control period (1/30 s)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (ACT_SPEC.dim,):
            raise ValueError(f"action must have {ACT_SPEC.dim} elements {ACT_SPEC.names}, "
                             f"got shape {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or Inf: {a.tolist()}")
        self._episode["actions"].append(a.copy())
        a = np.clip(a, self.action_space.low, self.action_space.high)
        self._target = np.clip(self._target + a[:3] * SIM_DT * SUBSTEPS, *WORKSPACE)
        self._opening = float(a[3])
        self._drive()
        for _ in range(SUBSTEPS):
            self._pb.stepSimulation(physicsClientId=self._cid)
        self._steps += 1
        obs = self._observe()
        lift = self._object_center()[2] - self._obj_rest_z
        self._held = self._held + 1 if lift >= LIFT_SUCCESS else 0
        self._success = self._success or self._held >= HOLD_STEPS
        # Never terminates: holding the object keeps paying, so the expert learns to keep it up.
        # Rollout loops stop at the first success (info["is_success"] is sticky).
        truncated = self._steps >= self.max_episode_steps
        return obs, self._reward(obs, lift), False, truncated, {
            "is_success": self._success, "lift": lift}

    def close(self) -> None:
        """Disconnect the physics client."""
        if self._cid is not None:
            self._pb.disconnect(physicsClientId=self._cid)
            self._cid = None

    # -- internals -----------------------------------------------------------------------------
    def _drive(self) -> None:
        pb, cid = self._pb, self._cid
        pb.setJointMotorControlArray(
            self._robot, [0, 1, 2], pb.POSITION_CONTROL, targetPositions=self._target.tolist(),
            forces=[300.0] * 3, positionGains=[0.3] * 3, physicsClientId=cid)
        q = (self._opening + 0.01) / 2  # joint position of each finger; 1 cm of pad thickness
        pb.setJointMotorControlArray(
            self._robot, [3, 4], pb.POSITION_CONTROL, targetPositions=[q, q],
            forces=[20.0, 20.0], physicsClientId=cid)

    def _object_center(self) -> np.ndarray:
        lo, hi = self._pb.getAABB(self._obj, physicsClientId=self._cid)
        return (np.array(lo) + np.array(hi)) / 2

    def _observe(self) -> np.ndarray:
        pb, cid = self._pb, self._cid
        states = pb.getJointStates(self._robot, [0, 1, 2, 3, 4], physicsClientId=cid)
        q = np.array([s[0] for s in states])
        lo, hi = (np.array(v) for v in pb.getAABB(self._obj, physicsClientId=cid))
        center, half = (lo + hi) / 2, (hi - lo) / 2
        grasp_point = q[:3] - np.array([0.0, 0.0, FINGER_REACH])
        contacts = [float(len(pb.getContactPoints(self._robot, self._obj, link, -1,
                                                  physicsClientId=cid)) > 0) for link in (3, 4)]
        opening = q[3] + q[4] - 0.01
        obs = np.concatenate([q[:3], [opening], center - grasp_point, center, half, contacts])
        return obs.astype(np.float32)

    def _reward(self, obs: np.ndarray, lift: float) -> float:
        """Shaped reward: reach the object, touch it with both pads, lift it and keep it up."""
        reach = float(np.linalg.norm(obs[4:7]))
        both = obs[13] * obs[14]
        return -2.0 * reach + 0.5 * both + 10.0 * float(np.clip(lift, 0.0, 0.15))


def make_scene(task: str, seed: int = 0):
    """The grasp scene `sim_robot` drives: one endless episode per reset."""
    from distill_ros.tasks.grasp_scene import GraspScene

    env = GraspEnv(task, max_episode_steps=2**31)  # a robot has no episode end
    return GraspScene(env, OBS_SPEC, ACT_SPEC, seed)


FAMILY = TaskFamily(
    name="grasp",
    tasks=tuple(OBJECTS),
    add_task=add_user_object,
    make=lambda task, **kw: GraspEnv(task, **kw),
    obs_spec=OBS_SPEC,
    act_spec=ACT_SPEC,
    control_rate_hz=CONTROL_RATE_HZ,
    max_episode_steps=EPISODE_STEPS,
    make_scene=make_scene,
)

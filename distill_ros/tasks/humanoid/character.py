"""The simulated DeepMimic humanoid in pybullet, and a kinematic copy that plays the clip.

The world is DeepMimic's (y up, gravity 9.8, ground friction 0.9, 10 solver iterations, one
substep per step). The simulated character has self-collision (excluding parents) and only
pybullet's stable-PD motors (Tan et al. 2011, `STABLE_PD_CONTROL`) drive it. The kinematic copy
lives in its own physics client, so it never touches the simulated world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from distill_ros.tasks.humanoid.motion import Pose
from distill_ros.tasks.humanoid.skeleton import GLOBAL_SCALING, JOINTS, NUM_LINKS, URDF

FRICTION = 0.9
GRAVITY = 9.8  # m/s^2, along -y
SOLVER_ITERATIONS = 10


def connect():
    """A new headless pybullet client with pybullet_data on its search path."""
    import pybullet
    import pybullet_data
    from pybullet_utils import bullet_client

    client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    client.setAdditionalSearchPath(pybullet_data.getDataPath())
    return client


def set_pose(pb, body: int, pose: Pose, base: bool = True) -> None:
    """Put a humanoid in `pose` (positions and velocities), its base too when `base`."""
    if base:
        pb.resetBasePositionAndOrientation(body, pose.root_pos.tolist(), pose.root_rot.tolist())
        pb.resetBaseVelocity(body, pose.root_lin_vel.tolist(), pose.root_ang_vel.tolist())
    pb.resetJointStatesMultiDof(body, [j.index for j in JOINTS],
                                [p.tolist() for p in pose.joint_pos],
                                [v.tolist() for v in pose.joint_vel])


def _free_joints(pb, body: int) -> None:
    """Switch off pybullet's default velocity motors so that only our torques act."""
    for joint in JOINTS:
        pb.setJointMotorControl2(body, joint.index, pb.POSITION_CONTROL, targetPosition=0,
                                 positionGain=0, targetVelocity=0, force=0)
        pb.setJointMotorControlMultiDof(body, joint.index, pb.POSITION_CONTROL,
                                        targetPosition=[0, 0, 0, 1], targetVelocity=[0, 0, 0],
                                        positionGain=0, velocityGain=1, force=[0, 0, 0])


@dataclass
class BodyState:
    """One reading of a humanoid: base, links (centres of mass) and joints, world frame."""

    base_pos: np.ndarray
    base_rot: np.ndarray
    base_lin_vel: np.ndarray
    base_ang_vel: np.ndarray
    link_pos: np.ndarray  # (15, 3)
    link_rot: np.ndarray  # (15, 4)
    link_lin_vel: np.ndarray  # (15, 3)
    link_ang_vel: np.ndarray  # (15, 3)
    joint_pos: list[np.ndarray]  # actuated joints, skeleton.JOINTS order
    joint_vel: list[np.ndarray]


class SimHumanoid:
    """The simulated character on a plane, driven by stable PD."""

    def __init__(self, time_step: float) -> None:
        self.pb = pb = connect()
        y_up = pb.getQuaternionFromEuler([-math.pi * 0.5, 0, 0])
        self.plane = pb.loadURDF("plane_implicit.urdf", [0, 0, 0], y_up,
                                 useMaximalCoordinates=True)
        pb.setGravity(0, -GRAVITY, 0)
        pb.setPhysicsEngineParameter(numSolverIterations=SOLVER_ITERATIONS)
        pb.changeDynamics(self.plane, -1, lateralFriction=FRICTION)
        flags = (pb.URDF_MAINTAIN_LINK_ORDER | pb.URDF_USE_SELF_COLLISION
                 | pb.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS)
        self.body = pb.loadURDF(URDF, [0, 0.889540259, 0], globalScaling=GLOBAL_SCALING,
                                useFixedBase=False, flags=flags)
        for link in range(-1, NUM_LINKS):
            pb.changeDynamics(self.body, link, lateralFriction=FRICTION)
        pb.changeDynamics(self.body, -1, linearDamping=0, angularDamping=0)
        _free_joints(pb, self.body)
        pb.setTimeStep(time_step)
        pb.setPhysicsEngineParameter(numSubSteps=1)
        self._indices = [j.index for j in JOINTS]
        self._kp = [float(j.kp) for j in JOINTS]
        self._kd = [float(j.kd) for j in JOINTS]
        self._forces = [[float(j.max_force)] * j.dof for j in JOINTS]
        self._zero_vel = [[0.0] * j.dof for j in JOINTS]
        self.link_masses = np.array([pb.getDynamicsInfo(self.body, i)[0]
                                     for i in range(NUM_LINKS)])  # kg

    def reset(self, pose: Pose) -> None:
        """Reference-state initialisation: the character takes the clip's pose and velocity."""
        set_pose(self.pb, self.body, pose)

    def step(self, targets: list[list[float]]) -> None:
        """One physics step towards PD targets (quaternions / angles, skeleton.JOINTS order)."""
        self.pb.setJointMotorControlMultiDofArray(
            self.body, self._indices, self.pb.STABLE_PD_CONTROL, targetPositions=targets,
            targetVelocities=self._zero_vel, forces=self._forces, positionGains=self._kp,
            velocityGains=self._kd)
        self.pb.stepSimulation()

    def read(self) -> BodyState:
        """Base, link and joint state now."""
        return read_body(self.pb, self.body)

    def ground_contacts(self) -> set[int]:
        """Links (pybullet indices, -1 the base) touching the ground now."""
        return {c[3] for c in self.pb.getContactPoints(self.body, self.plane)}

    def close(self) -> None:
        """Disconnect the physics client."""
        self.pb.disconnect()


def read_body(pb, body: int) -> BodyState:
    """Read a humanoid's base, links and actuated joints."""
    pos, rot = pb.getBasePositionAndOrientation(body)
    lin, ang = pb.getBaseVelocity(body)
    links = pb.getLinkStates(body, list(range(NUM_LINKS)), computeLinkVelocity=1,
                             computeForwardKinematics=1)
    joints = pb.getJointStatesMultiDof(body, [j.index for j in JOINTS])
    return BodyState(
        np.array(pos), np.array(rot), np.array(lin), np.array(ang),
        np.array([s[0] for s in links]), np.array([s[1] for s in links]),
        np.array([s[6] for s in links]), np.array([s[7] for s in links]),
        [np.array(s[0]) for s in joints], [np.array(s[1]) for s in joints])


class KinematicHumanoid:
    """The clip's character: posed, never simulated; reads link positions for rewards."""

    def __init__(self) -> None:
        self.pb = connect()
        self.body = self.pb.loadURDF(URDF, [0, 0.85, 0], globalScaling=GLOBAL_SCALING,
                                     useFixedBase=True,
                                     flags=self.pb.URDF_MAINTAIN_LINK_ORDER)

    def links(self, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """(15, 3) world link centre-of-mass positions and velocities in `pose`.

        The body is never stepped, so the velocities are the pose's (root and joints) as
        pybullet's forward kinematics propagates them, even though the base is fixed.
        """
        set_pose(self.pb, self.body, pose)
        links = self.pb.getLinkStates(self.body, list(range(NUM_LINKS)), computeLinkVelocity=1,
                                      computeForwardKinematics=1)
        return np.array([s[0] for s in links]), np.array([s[6] for s in links])

    def close(self) -> None:
        """Disconnect the physics client."""
        self.pb.disconnect()

"""A seated person's right arm as articulated capsules on a torso, and its kinematics.

Frames (world, metres): the person faces +x, z is up, the right shoulder is at -y. With all
joint angles 0 the arm hangs straight down. Joints, in chain order:

- shoulder flexion: about -y at the shoulder, positive raises the arm forward (+x);
- shoulder abduction: about the flexed frame's -x, positive moves the arm outward (-y);
- elbow flexion: about the upper arm's -y, positive bends the forearm forward and up.

The hand is fixed to the forearm (no wrist joint). `polyline` gives the points the dressed
ratio is measured along: hand tip, wrist, elbow, shoulder. The pybullet body is static (zero
masses): the pose is held exactly, however hard the garment pulls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOINTS = ("shoulder_flexion", "shoulder_abduction", "elbow_flexion")
#: pybullet link indices of the body parts (link 0 is the massless shoulder-flexion frame)
UPPER_ARM, FOREARM, HAND = 1, 2, 3
ARM_LINKS = (UPPER_ARM, FOREARM, HAND)


@dataclass(frozen=True)
class ArmModel:
    """Body dimensions (m): an adult's, after anthropometric tables, rounded."""

    torso_centre: tuple[float, float, float] = (0.0, 0.0, 0.75)   # seated: seat at 0.45 m
    torso_half_extents: tuple[float, float, float] = (0.1, 0.15, 0.25)
    shoulder_offset: tuple[float, float, float] = (0.0, -0.2, 0.22)  # from the torso centre
    upper_arm_length: float = 0.30
    upper_arm_radius: float = 0.05
    forearm_length: float = 0.26
    forearm_radius: float = 0.04
    hand_length: float = 0.10       # wrist to the centre of the fingertip cap
    hand_radius: float = 0.035

    @property
    def shoulder(self) -> np.ndarray:
        """Shoulder joint position (m, world frame)."""
        return np.add(self.torso_centre, self.shoulder_offset).astype(np.float64)

    def capsules(self) -> tuple[tuple[int, float], ...]:
        """(pybullet link index, radius) of each body part, from the upper arm out."""
        return ((UPPER_ARM, self.upper_arm_radius), (FOREARM, self.forearm_radius),
                (HAND, self.hand_radius))


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about a unit `axis` (Rodrigues)."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


_MINUS_X, _MINUS_Y, _DOWN = np.array([-1.0, 0, 0]), np.array([0, -1.0, 0]), np.array([0, 0, -1.0])


def link_frames(model: ArmModel, q: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """World (origin, rotation) of the upper arm, forearm and hand frames at joint angles `q`."""
    flex, abd, elbow = np.asarray(q, dtype=np.float64).reshape(3)
    r_upper = _rot(_MINUS_Y, flex) @ _rot(_MINUS_X, abd)
    elbow_pos = model.shoulder + r_upper @ (_DOWN * model.upper_arm_length)
    r_fore = r_upper @ _rot(_MINUS_Y, elbow)
    wrist = elbow_pos + r_fore @ (_DOWN * model.forearm_length)
    return {"upper_arm": (model.shoulder, r_upper), "forearm": (elbow_pos, r_fore),
            "hand": (wrist, r_fore)}


def polyline(model: ArmModel, q: np.ndarray) -> np.ndarray:
    """(4, 3): hand tip, wrist, elbow, shoulder (m, world frame), hand first."""
    frames = link_frames(model, q)
    wrist, r_hand = frames["hand"]
    tip = wrist + r_hand @ (_DOWN * (model.hand_length + model.hand_radius))
    return np.stack([tip, wrist, frames["forearm"][0], model.shoulder])


def axis_segments(model: ArmModel, q: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Each capsule as (start, end, radius) of its axis segment (m, world frame)."""
    tip, wrist, elbow, shoulder = polyline(model, q)
    finger = tip + (wrist - tip) / np.linalg.norm(wrist - tip) * model.hand_radius
    return [(shoulder, elbow, model.upper_arm_radius), (elbow, wrist, model.forearm_radius),
            (wrist, finger, model.hand_radius)]


def build_arm(pb, cid: int, model: ArmModel) -> int:
    """Create the static torso-and-arm multibody in pybullet; returns its body id."""
    def capsule(radius: float, length: float) -> tuple[int, int]:
        frame = [0.0, 0.0, -length / 2]
        col = pb.createCollisionShape(pb.GEOM_CAPSULE, radius=radius, height=length,
                                      collisionFramePosition=frame, physicsClientId=cid)
        vis = pb.createVisualShape(pb.GEOM_CAPSULE, radius=radius, length=length,
                                   visualFramePosition=frame, rgbaColor=[0.9, 0.7, 0.6, 1],
                                   physicsClientId=cid)
        return col, vis

    torso_col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=model.torso_half_extents,
                                        physicsClientId=cid)
    torso_vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=model.torso_half_extents,
                                     rgbaColor=[0.3, 0.4, 0.6, 1], physicsClientId=cid)
    parts = [capsule(model.upper_arm_radius, model.upper_arm_length),
             capsule(model.forearm_radius, model.forearm_length),
             capsule(model.hand_radius, model.hand_length)]
    n = 4
    return pb.createMultiBody(
        0.0, torso_col, torso_vis, list(model.torso_centre), [0, 0, 0, 1],
        linkMasses=[0.0] * n,
        linkCollisionShapeIndices=[-1] + [c for c, _ in parts],
        linkVisualShapeIndices=[-1] + [v for _, v in parts],
        linkPositions=[list(model.shoulder_offset), [0, 0, 0],
                       [0, 0, -model.upper_arm_length], [0, 0, -model.forearm_length]],
        linkOrientations=[[0, 0, 0, 1]] * n,
        linkInertialFramePositions=[[0, 0, 0]] * n,
        linkInertialFrameOrientations=[[0, 0, 0, 1]] * n,
        linkParentIndices=[0, 1, 2, 3],
        linkJointTypes=[pb.JOINT_REVOLUTE] * 3 + [pb.JOINT_FIXED],
        linkJointAxis=[list(_MINUS_Y), list(_MINUS_X), list(_MINUS_Y), [0, 0, 1]],
        physicsClientId=cid)


def set_pose(pb, cid: int, body: int, q: np.ndarray) -> None:
    """Put the arm at joint angles `q` (rad): flexion, abduction, elbow flexion."""
    for j, angle in enumerate(np.asarray(q, dtype=np.float64).reshape(3)):
        pb.resetJointState(body, j, float(angle), 0.0, physicsClientId=cid)

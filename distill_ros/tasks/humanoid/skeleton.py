"""The DeepMimic humanoid (`pybullet_data/humanoid/humanoid.urdf`): joints, gains, weights.

Numbers are those of DeepMimic's `humanoid3d` character and controller files as pybullet's
port (`pybullet_envs/deep_mimic/env/humanoid_stable_pd.py`) uses them. Frames are y-up.
"""

from __future__ import annotations

from dataclasses import dataclass

URDF = "humanoid/humanoid.urdf"
GLOBAL_SCALING = 0.25
NUM_LINKS = 15  # pybullet joints 0..14; link 0 is the pelvis ("root") on a fixed joint


@dataclass(frozen=True)
class Joint:
    """One actuated joint: pybullet index, DOF (3 spherical / 1 revolute), PD gains, limits."""

    name: str
    index: int
    dof: int
    kp: float
    kd: float
    max_force: float  # N m, per axis
    upper: bool  # upper body (HOVER's split) or lower body


# Actuated joints in DeepMimic's action and motion-file order.
JOINTS = (
    Joint("chest", 1, 3, 1000, 100, 200, True),
    Joint("neck", 2, 3, 100, 10, 50, True),
    Joint("right_hip", 3, 3, 500, 50, 200, False),
    Joint("right_knee", 4, 1, 500, 50, 150, False),
    Joint("right_ankle", 5, 3, 400, 40, 90, False),
    Joint("right_shoulder", 6, 3, 400, 40, 100, True),
    Joint("right_elbow", 7, 1, 300, 30, 60, True),
    Joint("left_hip", 9, 3, 500, 50, 200, False),
    Joint("left_knee", 10, 1, 500, 50, 150, False),
    Joint("left_ankle", 11, 3, 400, 40, 90, False),
    Joint("left_shoulder", 12, 3, 400, 40, 100, True),
    Joint("left_elbow", 13, 1, 300, 30, 60, True),
)
ACTION_DIM = sum(4 if j.dof == 3 else 1 for j in JOINTS)  # 36: (angle, axis) or angle
STATE_DIM = 1 + 1 + NUM_LINKS * 7 + NUM_LINKS * 6  # phase, root height, poses, velocities

# Imitation-reward weight of each pybullet link 0..14 (index 0 weighs the root rotation).
JOINT_WEIGHTS = (0.20833, 0.10416, 0.0625, 0.10416, 0.0625, 0.041666666666666671, 0.0625,
                 0.0416, 0.00, 0.10416, 0.0625, 0.0416, 0.0625, 0.0416, 0.0000)
END_EFFECTORS = (5, 8, 11, 14)  # ankles and wrists
# Links that end the episode when they touch the ground (run_humanoid3d_*_args.txt default).
FALL_CONTACT_LINKS = (0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14)
# Key bodies for HOVER's keypoint commands: name -> (pybullet link, upper body?).
KEY_BODIES = {"head": (2, True), "right_hand": (8, True), "left_hand": (14, True),
              "pelvis": (0, False), "right_foot": (5, False), "left_foot": (11, False)}

# DeepMimic's action bounds (cCtCtrlUtil::BuildBoundsPDSpherical), in action order.
ACTION_LOW = (-4.8, -1, -1, -1, -4, -1, -1, -1, -7.78, -1, -1, -1, -7.85, -6.28, -1, -1, -1,
              -12.56, -1, -1, -1, -4.71, -7.78, -1, -1, -1, -7.85, -6.28, -1, -1, -1, -8.46, -1,
              -1, -1, -4.71)
ACTION_HIGH = (4.8, 1, 1, 1, 4, 1, 1, 1, 8.78, 1, 1, 1, 4.71, 6.28, 1, 1, 1, 12.56, 1, 1, 1,
               7.85, 8.78, 1, 1, 1, 4.71, 6.28, 1, 1, 1, 10.1, 1, 1, 1, 7.85)

# Imitation reward (DeepMimic's cSceneImitate::CalcRewardImitate, published-code constants).
REWARD_WEIGHTS = {"pose": 0.5, "vel": 0.05, "end_eff": 0.15, "root": 0.2, "com": 0.1}
REWARD_SCALES = {"pose": 2.0, "vel": 0.1, "end_eff": 40.0, "root": 5.0, "com": 10.0}

LINK_NAMES = ("root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder",
              "right_elbow", "right_wrist", "left_hip", "left_knee", "left_ankle",
              "left_shoulder", "left_elbow", "left_wrist")  # pybullet link order (URDF)


def state_names() -> list[str]:
    """Names of the 197 state values, in order (positions and velocities in the heading frame)."""
    names = ["phase", "root_height"]
    for link in LINK_NAMES:
        names += [f"{link}/pos_{a}" for a in "xyz"] + [f"{link}/rot_{a}" for a in "wxyz"]
    for link in LINK_NAMES:
        names += [f"{link}/lin_vel_{a}" for a in "xyz"] + [f"{link}/ang_vel_{a}" for a in "xyz"]
    return names


def action_names() -> list[str]:
    """Names of the 36 action values: (angle, axis) per spherical joint, angle per revolute."""
    names = []
    for joint in JOINTS:
        names += ([f"{joint.name}/angle"] + [f"{joint.name}/axis_{a}" for a in "xyz"]
                  if joint.dof == 3 else [f"{joint.name}/angle"])
    return names

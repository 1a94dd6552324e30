"""DeepMimic's state vector and imitation reward, from readings of the two characters.

State (197 values, Peng et al. 2018, sec. 4.1 and pybullet's `getState`): phase, root height,
then each of the 15 links' centre-of-mass position relative to the root and orientation
(w, x, y, z, w >= 0), then their linear and angular velocities, all in the root's heading
frame (rotated about +y so the root faces +x).

Reward (DeepMimic's `cSceneImitate::CalcRewardImitate`, published constants):
`r = sum_i w_i exp(-k_i e_i)` over pose, velocity, end-effector, root and (optionally) COM
velocity errors, weights normalised to sum to one.
"""

from __future__ import annotations

import numpy as np

from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.character import BodyState
from distill_ros.tasks.humanoid.motion import Pose
from distill_ros.tasks.humanoid.skeleton import (END_EFFECTORS, JOINT_WEIGHTS, JOINTS,
                                                 KEY_BODIES, REWARD_SCALES, REWARD_WEIGHTS,
                                                 STATE_DIM)

KEY_LINKS = [link for link, _ in KEY_BODIES.values()]


def deepmimic_state(body: BodyState, phase: float) -> np.ndarray:
    """The 197-value DeepMimic state of a simulated character at clip phase `phase`."""
    inv_heading = quat.yaw_quat(-quat.heading(body.base_rot))
    pos = quat.rotate(inv_heading, body.link_pos - body.base_pos)
    rot = quat.mul(inv_heading, body.link_rot)
    rot = np.where(rot[:, 3:] < 0, -rot, rot)
    rot_wxyz = np.concatenate([rot[:, 3:], rot[:, :3]], axis=1)
    lin = quat.rotate(inv_heading, body.link_lin_vel)
    ang = quat.rotate(inv_heading, body.link_ang_vel)
    state = np.concatenate([[phase, body.base_pos[1]],
                            np.concatenate([pos, rot_wxyz], axis=1).ravel(),
                            np.concatenate([lin, ang], axis=1).ravel()])
    assert state.shape == (STATE_DIM,)
    return state


def _sq(v: np.ndarray) -> float:
    return float(np.dot(v, v))


def imitation_reward(sim: BodyState, ref: Pose, ref_link_pos: np.ndarray,
                     com_vel_err: float | None = None) -> tuple[float, dict[str, float]]:
    """Imitation reward of the simulated character against the reference pose.

    Args:
        sim: the simulated character now.
        ref: the clip's pose at the same time.
        ref_link_pos: (15, 3) link positions of the kinematic character in `ref`.
        com_vel_err: squared COM-velocity error (m/s)^2, or None to leave the COM term out.
    Returns:
        The reward in [0, 1] and each term's error and reward.
    """
    root_w = JOINT_WEIGHTS[0]
    root_rot_err = float(quat.angle(quat.mul(ref.root_rot, quat.conj(sim.base_rot)))) ** 2
    root_ang_err = _sq(sim.base_ang_vel - ref.root_ang_vel)
    pose_err, vel_err = root_w * root_rot_err, root_w * root_ang_err
    weights = np.array([JOINT_WEIGHTS[j.index] for j in JOINTS])
    spherical = np.array([j.dof == 3 for j in JOINTS])
    sph = np.flatnonzero(spherical)
    sim_q = np.array([sim.joint_pos[k] for k in sph])
    ref_q = np.array([ref.joint_pos[k] for k in sph])
    angle_err = np.zeros(len(JOINTS))
    angle_err[sph] = quat.angle(quat.mul(ref_q, quat.conj(sim_q))) ** 2
    for k in np.flatnonzero(~spherical):
        angle_err[k] = float(sim.joint_pos[k][0] - ref.joint_pos[k][0]) ** 2
    vel_sq = np.array([_sq(sv - rv) for sv, rv in zip(sim.joint_vel, ref.joint_vel)])
    pose_err += float(weights @ angle_err)
    vel_err += float(weights @ vel_sq)
    ee = list(END_EFFECTORS)
    end_eff_err = float(np.mean(np.sum((sim.link_pos[ee] - ref_link_pos[ee]) ** 2, axis=1)))
    root_err = (_sq(sim.base_pos - ref.root_pos) + 0.1 * root_rot_err
                + 0.01 * _sq(sim.base_lin_vel - ref.root_lin_vel) + 0.001 * root_ang_err)
    errors = {"pose": pose_err, "vel": vel_err, "end_eff": end_eff_err, "root": root_err}
    if com_vel_err is not None:
        errors["com"] = 0.1 * com_vel_err
    total_w = sum(REWARD_WEIGHTS[k] for k in errors)
    terms = {k: float(np.exp(-REWARD_SCALES[k] * e)) for k, e in errors.items()}
    reward = sum(REWARD_WEIGHTS[k] / total_w * terms[k] for k in terms)
    info = {f"{k}_err": e for k, e in errors.items()}
    info.update({f"{k}_reward": r for k, r in terms.items()})
    return float(reward), info


def joint_angle_errors(sim: BodyState, ref: Pose) -> np.ndarray:
    """Per joint (skeleton.JOINTS order): the angle (rad) between simulated and reference."""
    out = np.zeros(len(JOINTS))
    for k, joint in enumerate(JOINTS):
        if joint.dof == 3:
            out[k] = float(quat.angle(quat.mul(ref.joint_pos[k], quat.conj(sim.joint_pos[k]))))
        else:
            out[k] = abs(float(sim.joint_pos[k][0] - ref.joint_pos[k][0]))
    return out


def tracking_errors(sim: BodyState, ref: Pose, ref_link_pos: np.ndarray) -> dict[str, float]:
    """Tracking metrics of one instant, as HOVER reports them.

    `mpjpe_mm`: mean distance (mm) of the key bodies (`skeleton.KEY_BODIES`) relative to the
    root, simulated against reference (root-relative MPJPE, so a drift of the whole body does
    not count); `joint_err_rad`: mean joint angle error; `root_vel_err`: root velocity error
    (m/s, world frame).
    """
    sim_rel = sim.link_pos[KEY_LINKS] - sim.base_pos
    ref_rel = ref_link_pos[KEY_LINKS] - ref.root_pos
    return {"mpjpe_mm": 1000.0 * float(np.mean(np.linalg.norm(sim_rel - ref_rel, axis=1))),
            "joint_err_rad": float(np.mean(joint_angle_errors(sim, ref))),
            "root_vel_err": float(np.linalg.norm(sim.base_lin_vel - ref.root_lin_vel))}

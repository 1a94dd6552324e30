"""Heading feedback for the humanoid: the error both sides are told, the steer the teacher adds.

DeepMimic's experts read their state in the character's own heading frame, so nothing tells
them that the character has turned away from the clip, and a DAgger student that drifts a
little per step (its hip targets are a few degrees off) is never steered back: it walks a
circle while the imitation reward, which compares world-frame root poses, decays.

HOVER's teachers track the global root. The cheap equivalent here is a steering correction on
the expert's labels: a heading error (the clip's root heading minus the character's,
low-passed over about a gait cycle because both headings swing by +-7 degrees within each
step) twists the left hip's target about the thigh's own long axis. Measured open loop (walk
expert, 3 starts, 8 s): a constant twist of the left hip by +0.15 rad turns the walk left at
about 15 deg/s, -0.15 right at about 10 deg/s, -0.25 at 20 deg/s, without a fall. The other
twists tried are weaker or trip the walker in one direction: the right hip alone (+0.15: 2
deg/s), both hips (+0.15: 7 deg/s left; -0.15: 4 deg/s right and a fall in 3), either ankle,
the chest, or any hip turned about the pelvis's up axis instead (falls when turning right):
the expert's gait is not symmetric. The limits follow: up to 0.3 rad to the right (the
way a drifting student turns off: it needs the authority), 0.08 to the left (0.12 and more
tripped the expert in turned starts). Gain, low-pass and limits were chosen on 16 walk
episodes of check seeds (see the humanoid section of docs/design-notes.md).

`SteeredTeacher` reads the state plus the `heading` observation group
(`dagger.teacher_groups: [state, heading]`); a steered student reads the same group
(`student_groups: [proprio, command, heading]`). The env tells both 0 whenever the mask
hides the root's yaw-rate command, so no label depends on what the student cannot see, and
on clips other than `STEERED_CLIPS` (walk), whose gaits the twist was not measured on.
"""

from __future__ import annotations

import numpy as np

from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.skeleton import STATE_DIM, action_names

HEADING_ALPHA = 0.05  # low-pass per 30 Hz control step: a time constant of about 0.65 s
STEER_GAIN = 2.0      # rad of hip twist per rad of (filtered) heading error
STEER_LIMIT = (-0.3, 0.08)  # rad of twist at most: to the right, to the left


# The clips whose heading error is told (0 for any other): the twist above was measured on the
# walk expert's gait; jump's expert, steered the same way, fell where the shipped one does not
# (2 of 24 episodes against 0), and its students fell more (docs/design-notes.md, humanoid).
STEERED_CLIPS = ("walk",)
STEERED_JOINT = "left_hip"
STEER_OFFSET = action_names().index(f"{STEERED_JOINT}/angle")  # its (angle, axis) in the action


def heading_error(ref_rot: np.ndarray, sim_rot: np.ndarray) -> float:
    """The clip's root heading minus the character's (rad, wrapped to [-pi, pi))."""
    diff = float(quat.heading(ref_rot) - quat.heading(sim_rot))
    return (diff + np.pi) % (2.0 * np.pi) - np.pi


class HeadingFilter:
    """Exponential low-pass of the heading error, restarted with each episode."""

    def __init__(self, alpha: float = HEADING_ALPHA) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha, self.value = alpha, 0.0

    def reset(self, error: float = 0.0) -> float:
        """Start over from `error` (a reference-state start begins on the clip: 0)."""
        self.value = float(error)
        return self.value

    def update(self, error: float) -> float:
        """Blend in the error now; returns the filtered value."""
        self.value += self.alpha * (float(error) - self.value)
        return self.value


def steer_action(action: np.ndarray, error: np.ndarray, gain: float = STEER_GAIN,
                 limit: tuple[float, float] = STEER_LIMIT) -> np.ndarray:
    """(B, 36) or (36,) PD targets with the left hip twisted by clip(gain * error, *limit).

    The twist is about the thigh's own y axis (the leg's long axis), applied after the target
    rotation; a positive error (the clip heads further left) turns the walk left.
    """
    action = np.asarray(action, np.float64)
    out = np.atleast_2d(action).copy()
    twist = np.clip(gain * np.asarray(error, np.float64).reshape(-1), *limit)
    yaw = quat.yaw_quat(np.broadcast_to(twist, (len(out),)))
    i = STEER_OFFSET
    out[:, i:i + 4] = _twisted(out[:, i], out[:, i + 1:i + 4], yaw)
    return out[0] if action.ndim == 1 else out


def _twisted(angle: np.ndarray, axis: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(angle, axis) of rotation(axis, angle) * yaw, written as close to the input as may be.

    The expert's axes are not unit vectors and its angles take either sign, so the twisted
    target keeps the input's axis length, the axis's side and the angle's turn: with no
    twist the label is the expert's own, and a small twist changes it a little (a regression
    target that flipped between equal rotations would not be learnable).
    """
    rotvec = quat.to_rotvec(quat.mul(quat.from_axis_angle(axis, angle), yaw))
    theta = np.linalg.norm(rotvec, axis=1)
    unit = np.where(theta[:, None] > 1e-12, rotvec / np.maximum(theta, 1e-12)[:, None],
                    axis / np.maximum(np.linalg.norm(axis, axis=1), 1e-12)[:, None])
    flip = np.sum(unit * axis, axis=1) < 0
    unit, theta = np.where(flip[:, None], -unit, unit), np.where(flip, -theta, theta)
    theta += 2.0 * np.pi * np.round((angle - theta) / (2.0 * np.pi))
    return np.concatenate([theta[:, None], unit * np.linalg.norm(axis, axis=1)[:, None]],
                          axis=1)


class SteeredTeacher:
    """A DeepMimic expert that reads `[state (197), heading error (1)]` and steers its walk."""

    def __init__(self, base, gain: float = STEER_GAIN,
                 limit: tuple[float, float] = STEER_LIMIT) -> None:
        if getattr(base, "obs_dim", STATE_DIM) != STATE_DIM:
            raise ValueError(f"a steered teacher wraps an expert of DeepMimic's {STATE_DIM}-"
                             f"value state, got one of {base.obs_dim}")
        self.base, self.gain, self.limit = base, gain, limit
        self.name = f"{getattr(base, 'name', 'teacher')}+steer"

    @property
    def obs_dim(self) -> int:
        """State plus the heading error (198)."""
        return STATE_DIM + 1

    @property
    def act_dim(self) -> int:
        """Action size (36)."""
        return self.base.act_dim

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, 198) or (198,) -> the expert's PD targets, steered towards the clip's heading."""
        obs = np.asarray(obs, np.float32)
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"{self.name} reads the state and the heading group "
                             f"({self.obs_dim} values), got shape {obs.shape}; set "
                             "dagger.teacher_groups: [state, heading]")
        action = np.asarray(self.base.act(obs[..., :STATE_DIM]), np.float64)
        return steer_action(action, obs[..., STATE_DIM], self.gain,
                            self.limit).astype(np.float32)


def teacher_for_groups(teacher, groups) -> object:
    """The expert that reads `groups`: steered when `heading` follows `state` among them."""
    if tuple(groups) == ("state", "heading"):
        return SteeredTeacher(teacher)
    if "heading" in tuple(groups):
        raise ValueError(f"a humanoid teacher reading the heading group reads "
                         f"[state, heading], in that order; got teacher_groups {list(groups)}")
    return teacher

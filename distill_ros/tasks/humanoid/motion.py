"""DeepMimic motion clips (`pybullet_data/data/motions/humanoid3d_<clip>.txt`).

A clip is JSON: `Loop` and `Frames`, each frame `[duration, root xyz, root wxyz, joints...]`
with spherical joints as w, x, y, z quaternions and revolute joints as one angle, in
`skeleton.JOINTS` order. A looping clip repeats with the root shifted by the first-to-last
frame offset per cycle, as DeepMimic does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.skeleton import JOINTS


def motions_dir() -> Path:
    """The folder of DeepMimic clips inside the installed pybullet_data."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def clip_names() -> list[str]:
    """Every humanoid3d clip that ships with pybullet_data."""
    return sorted(p.stem[len("humanoid3d_"):] for p in motions_dir().glob("humanoid3d_*.txt"))


@dataclass
class Pose:
    """The reference at one time: root pose and velocity, joint positions and velocities.

    Joint positions are pybullet's (x, y, z, w) quaternions (spherical) or 1-element angles
    (revolute); spherical joint velocities are local angular velocities (rad/s).
    """

    root_pos: np.ndarray
    root_rot: np.ndarray
    root_lin_vel: np.ndarray
    root_ang_vel: np.ndarray
    joint_pos: list[np.ndarray]
    joint_vel: list[np.ndarray]


def _wxyz_to_xyzw(block: np.ndarray) -> np.ndarray:
    return np.concatenate([block[:, 1:4], block[:, :1]], axis=1)


class MotionClip:
    """One clip: frames, timing and interpolation (DeepMimic's kinematic character)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"motion clip {path} does not exist; choose one of "
                                    f"{', '.join(clip_names())} or give a DeepMimic clip file")
        data = json.loads(path.read_text())
        frames = np.asarray(data["Frames"], dtype=float)
        if frames.ndim != 2 or frames.shape[1] != 44 or len(frames) < 2:
            raise ValueError(f"motion clip {path}: expected at least 2 frames of 44 values "
                             f"(humanoid3d), got shape {frames.shape}")
        self.path, self.name = path, path.stem.replace("humanoid3d_", "")
        self.loop = data.get("Loop", "wrap")
        self.frames = frames
        self.frame_dt = float(frames[0, 0])  # seconds per frame (DeepMimic reads frame 0's)
        self.root_pos = frames[:, 1:4]
        self.root_rot = _wxyz_to_xyzw(frames[:, 4:8])
        self.joint_pos = []  # per joint: (N, 4) quaternions or (N, 1) angles
        col = 8
        for joint in JOINTS:
            width = 4 if joint.dof == 3 else 1
            block = frames[:, col:col + width]
            self.joint_pos.append(_wxyz_to_xyzw(block) if width == 4 else block)
            col += width
        # The same, stacked by kind, to interpolate all joints at once.
        self._spherical = np.stack([p for p in self.joint_pos if p.shape[1] == 4], axis=1)
        self._revolute = np.concatenate([p for p in self.joint_pos if p.shape[1] == 1], axis=1)
        self.cycle_offset = self.root_pos[-1] - self.root_pos[0]

    @classmethod
    def named(cls, clip: str) -> MotionClip:
        """A clip shipped with pybullet_data, by name (`walk`, `jump`, `run`, ...)."""
        return cls(motions_dir() / f"humanoid3d_{clip}.txt")

    @property
    def num_frames(self) -> int:
        """Number of keyframes."""
        return len(self.frames)

    @property
    def cycle_time(self) -> float:
        """Seconds per cycle (the last frame closes the cycle)."""
        return self.frame_dt * (self.num_frames - 1)

    def phase(self, t: float) -> float:
        """Phase in [0, 1) at time t (s)."""
        phase = math.fmod(t / self.cycle_time, 1.0)
        return phase + 1.0 if phase < 0 else phase

    def locate(self, t: float) -> tuple[int, int, int, float]:
        """(cycle count, frame, next frame, fraction between them) at time t (s)."""
        cycles = math.floor(t / self.cycle_time)
        frame_time = t - cycles * self.cycle_time
        if frame_time < 0:
            frame_time += self.cycle_time
        frame = min(int(frame_time / self.frame_dt), self.num_frames - 1)
        nxt = min(frame + 1, self.num_frames - 1)
        return cycles, frame, nxt, (frame_time - frame * self.frame_dt) / self.frame_dt

    def pose(self, t: float) -> Pose:
        """The interpolated reference pose and its velocity at time t (s)."""
        cycles, i, j, frac = self.locate(t)
        dt = self.frame_dt
        root_pos = self.root_pos[i] + frac * (self.root_pos[j] - self.root_pos[i])
        root_pos = root_pos + cycles * self.cycle_offset
        root_rot = quat.slerp(self.root_rot[i], self.root_rot[j], frac)
        # World angular velocity of the root; local (child-frame) velocity of the joints.
        root_ang = quat.to_rotvec(quat.mul(self.root_rot[j], quat.conj(self.root_rot[i]))) / dt
        sa, sb = self._spherical[i], self._spherical[j]
        sph_pos = quat.slerp(sa, sb, frac)
        sph_vel = quat.to_rotvec(quat.mul(quat.conj(sa), sb)) / dt
        ra, rb = self._revolute[i], self._revolute[j]
        rev_pos, rev_vel = ra + frac * (rb - ra), (rb - ra) / dt
        joint_pos, joint_vel, k_s, k_r = [], [], 0, 0
        for joint in JOINTS:
            if joint.dof == 3:
                joint_pos.append(sph_pos[k_s])
                joint_vel.append(sph_vel[k_s])
                k_s += 1
            else:
                joint_pos.append(rev_pos[k_r:k_r + 1])
                joint_vel.append(rev_vel[k_r:k_r + 1])
                k_r += 1
        return Pose(root_pos, root_rot, (self.root_pos[j] - self.root_pos[i]) / dt, root_ang,
                    joint_pos, joint_vel)

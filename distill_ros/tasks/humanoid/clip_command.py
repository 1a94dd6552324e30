"""A DeepMimic clip played as HOVER's masked command, without ROS (``motion_command`` runs it).

`ClipCommand.at(t)` gives the command of `commands.CommandSpace` for the clip at time `t` (s):
the clip's next frame(s) (`env.reference_frames`, its key bodies posed by a kinematic
character in its own physics client) with the elements the current mode hides set to zero,
and the 0/1 mask. The clip and the mode can change between calls.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from distill_ros.tasks.humanoid.commands import apply_mask, CommandSpace, MODES


class ClipCommand:
    """Masked HOVER commands of one clip at any clip time.

    Args:
        clip: a clip of pybullet_data (``walk``, ``jump``, ...).
        mode: one of `commands.MODES`.
        future_steps: control steps ahead of each command frame, as the student was trained.
        control_hz: control rate that spaces the frames.
    """

    def __init__(self, clip: str = "walk", mode: str = "full",
                 future_steps: Sequence[int] = (1,), control_hz: float = 30.0) -> None:
        from distill_ros.tasks.humanoid.character import KinematicHumanoid

        self.space = CommandSpace(tuple(future_steps))
        self.labels = self.space.names()
        self.control_hz = control_hz
        self.kin = KinematicHumanoid()
        self.set_clip(clip)
        self.set_mode(mode)

    def set_clip(self, name: str) -> None:
        """Play clip `name` (FileNotFoundError naming the clips if there is none)."""
        from distill_ros.tasks.humanoid.motion import MotionClip

        self.clip = MotionClip.named(name)

    def set_mode(self, mode: str) -> None:
        """Show what `mode` shows (ValueError naming the modes otherwise)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.mode, self.mask = mode, self.space.mask(MODES[mode])

    def at(self, clip_time: float) -> tuple[np.ndarray, np.ndarray]:
        """``(values, mask)`` at `clip_time` (s): masked values are zero."""
        from distill_ros.tasks.humanoid.env import reference_frames

        clip, mask = self.clip, self.mask   # one consistent pair if a set lands meanwhile
        steps = self.space.future_steps
        frames = reference_frames(clip, self.kin, clip_time, max(steps), self.control_hz,
                                  set(steps))
        return apply_mask(self.space.compute(frames), mask), mask

    def close(self) -> None:
        """Disconnect the kinematic character's physics client."""
        self.kin.close()

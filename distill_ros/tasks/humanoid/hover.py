"""The humanoid task with observation groups: privileged state, proprioception, masked command.

HOVER (He et al. 2024) trains one student that reads proprioception and a masked command
instead of the clip's phase. Each step returns a dict of the groups asked for:
- `state` (197): DeepMimic's state, phase first: what the DeepMimic teachers read;
- `proprio` (196): the same without the phase: nothing names the clip or the time in it;
- `command` (`CommandSpace.dim`) with `command_mask`: the clip's next frame(s) as HOVER's
  command (`commands.py`), masked elements zeroed, and the mask;
- `heading` (1): the low-passed heading error (`steering.py`: the clip's root heading minus
  the character's), told with the root's yaw-rate command (0 while the mask hides
  `root/root_yaw_rate`, and 0 on clips other than `steered_clips`, default walk only): what a
  steered teacher reads besides the state, and what a steered student reads besides its
  command. So the teacher steers only when the student is told the heading, and a label never
  depends on anything the student cannot see.

The mask is drawn per episode by a `CommandSampler` (a weighted mode, kept whole or thinned by
random sparsity) and may be switched mid-episode (`switch_prob`); `reset(options={"mode": m})`
or `set_mode(m)` pins one mode (no sparsity, no switches) for evaluation, a mode-switch test
or a user's command.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import gymnasium as gym
import numpy as np

from distill_ros.tasks.humanoid.commands import (MODES, CommandSampler, CommandSpace,
                                                 apply_mask)
from distill_ros.tasks.humanoid.env import HumanoidImitationEnv
from distill_ros.tasks.humanoid.skeleton import STATE_DIM
from distill_ros.tasks.humanoid.steering import STEERED_CLIPS, HeadingFilter, heading_error

GROUPS = ("state", "proprio", "command", "heading")
HEADING_WITH = "root/root_yaw_rate"  # the command item the heading error is told with


class HoverEnv(HumanoidImitationEnv):
    """`HumanoidImitationEnv` returning named observation groups and a masked command."""

    def __init__(self, clip: str = "walk", groups: Sequence[str] = GROUPS,
                 modes: Sequence[str] = tuple(MODES), sparsity: float = 0.0,
                 switch_prob: float = 0.0, future_steps: Sequence[int] = (1,),
                 mode_weights: Mapping[str, float] | None = None, whole_prob: float = 0.0,
                 steered_clips: Sequence[str] = STEERED_CLIPS, **kwargs) -> None:
        unknown = [g for g in groups if g not in GROUPS]
        if not groups or unknown:
            raise ValueError(f"groups must be a non-empty list of {list(GROUPS)}, got "
                             f"{list(groups)}")
        super().__init__(clip, **kwargs)
        self.groups = tuple(groups)
        self.space = CommandSpace(tuple(future_steps))
        self.sampler = CommandSampler(
            self.space, tuple(modes), sparsity, switch_prob,
            weights=mode_weights, whole_prob=whole_prob)
        self.pinned: str | None = None
        self.heading = HeadingFilter()
        # the filter runs only when a group reads it, and tells its value on steered clips only
        self._steered = "heading" in self.groups and clip in tuple(steered_clips)
        self.mask = self.space.mask(MODES[self.sampler.modes[0]])
        boxes = {"state": STATE_DIM, "proprio": STATE_DIM - 1, "command": self.space.dim,
                 "command_mask": self.space.dim, "heading": 1}
        keys = [k for g in self.groups for k in ((g, "command_mask") if g == "command"
                                                 else (g,))]
        self.observation_space = gym.spaces.Dict(
            {k: gym.spaces.Box(-np.inf, np.inf, (boxes[k],), np.float32) for k in keys})

    @property
    def mode(self) -> str:
        """The mode whose items the command shows now (a pinned one, or the sampler's)."""
        return self.pinned or self.sampler.mode

    def set_mode(self, mode: str | None) -> None:
        """Pin `mode` from the next observation on (all its items, no switches); None: unpin."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.pinned = mode
        if mode is not None:
            self.mask = self.space.mask(MODES[mode])
        elif self.sampler.current is not None:  # back to the sampler's current draw
            self.mask = self.sampler.current
        else:
            self.mask = self.sampler.reset()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """RSI as the base env; a fresh mask (drawn, or the pinned `options["mode"]`)."""
        state, info = super().reset(seed=seed, options=options)
        if self._steered:
            self.heading.reset(self._heading_error())
        # the sampler's stream follows the env's seeded one, so a seeded reset repeats masks
        self.sampler.reset(seed=int(self.np_random.integers(2 ** 31)))
        self.set_mode((options or {}).get("mode", self.pinned))
        info["mode"] = self.mode
        return self._groups(state), info

    def step(self, action):
        """One control step; the mask may switch (unless pinned) before the next command."""
        state, reward, terminated, truncated, info = super().step(action)
        if self._steered:
            self.heading.update(self._heading_error())
        if self.pinned is None:
            self.mask = self.sampler.step()
        info["mode"] = self.mode
        return self._groups(state), reward, terminated, truncated, info

    def command(self) -> np.ndarray:
        """The unmasked command now: the clip's future frame(s) in the reference's yaw frame."""
        steps = self.space.future_steps
        return self.space.compute(self.reference_frames(max(steps), bodies=set(steps)))

    def _heading_error(self) -> float:
        base_rot = self.sim.pb.getBasePositionAndOrientation(self.sim.body)[1]
        return heading_error(self.clip.pose(self.time).root_rot, np.asarray(base_rot))

    def _groups(self, state: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for group in self.groups:
            if group == "state":
                out["state"] = state
            elif group == "proprio":
                out["proprio"] = state[1:].copy()  # no phase
            elif group == "heading":
                told = self._steered and self.mask[self.space.slices[HEADING_WITH][0]].all()
                out["heading"] = np.array([self.heading.value if told else 0.0], np.float32)
            else:
                out["command"] = apply_mask(self.command(), self.mask)
                out["command_mask"] = self.mask.astype(np.float32)
        return out

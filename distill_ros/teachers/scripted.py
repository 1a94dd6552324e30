"""Hand-written experts (grasp: a top-down grasp; toy: straight to the goal) as TorchScript.

It reads only the observation (no memory), so it can be saved with `torch.jit.script` and
used as a user-supplied teacher file: the example for `teachers.sources`, and the fast
expert that tests use to check distillation without training RL experts first.
"""

from __future__ import annotations

import torch
from torch import nn


class ScriptedGraspExpert(nn.Module):
    """Align over the object, descend, close, then lift once both pads touch it."""

    def __init__(self, gain: float = 10.0, max_speed: float = 0.9,
                 max_opening: float = 0.09) -> None:
        super().__init__()
        self.gain = gain
        self.max_speed = max_speed
        self.max_opening = max_opening

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 15) grasp observation -> (B, 4) [vx, vy, vz, opening] in m/s and m."""
        rel = obs[:, 4:7]                      # object centre minus grasp point, m
        at_floor = obs[:, 2] < 0.0725          # palm at its lowest allowed height
        grasped = (obs[:, 13] > 0.5) & (obs[:, 14] > 0.5)
        aligned = torch.linalg.norm(rel[:, :2], dim=1) < 0.006
        at_height = (rel[:, 2] > -0.004) | at_floor
        hover = torch.where(aligned, rel[:, 2], rel[:, 2] + 0.05)
        vz = torch.where(grasped, torch.full_like(hover, 0.5), self.gain * hover)
        closing = grasped | (aligned & at_height)
        vxy = torch.where(closing.unsqueeze(1), torch.zeros_like(rel[:, :2]),
                          self.gain * rel[:, :2])
        vz = torch.where(closing & ~grasped, torch.zeros_like(vz), vz)
        opening = torch.where(closing, torch.zeros_like(vz),
                              torch.full_like(vz, self.max_opening))
        v = torch.clamp(torch.cat([vxy, vz.unsqueeze(1)], dim=1), -self.max_speed,
                        self.max_speed)
        return torch.cat([v, opening.unsqueeze(1)], dim=1)


def save_scripted_expert(path: str) -> None:
    """Write the expert as a TorchScript file usable in `teachers.sources`."""
    torch.jit.save(torch.jit.script(ScriptedGraspExpert()), path)


class ScriptedToyExpert(nn.Module):
    """The toy family's analytic expert (`tasks.toy.expert_action`) as a TorchScript module."""

    def __init__(self, gain: float = 8.0, max_speed: float = 1.0) -> None:
        super().__init__()
        self.gain = gain
        self.max_speed = max_speed

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 9) toy state (mass, goal, goal - mass) -> (B, 3) velocity in m/s."""
        return torch.clamp(self.gain * obs[:, 6:9], -self.max_speed, self.max_speed)


def save_toy_expert(path: str) -> None:
    """Write the toy expert as a TorchScript file usable in `teachers.sources`."""
    torch.jit.save(torch.jit.script(ScriptedToyExpert()), path)

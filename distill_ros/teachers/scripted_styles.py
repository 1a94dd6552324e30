"""Scripted grasp experts with different approach styles, for multimodal demonstrations.

Diffusion Policy (Chi et al. 2023) and OneDP (Wang et al. 2024) are about demonstrations
with several valid actions per state. Two experts that reach the hover point over the
object from opposite sides (+y or -y) give exactly that: from the same start they move
the palm sideways at the same speed in opposite directions, so the mean of their actions
(what an MSE-trained behaviour-cloning MLP learns) stands still. Each is stateless and
TorchScript-able, like `ScriptedGraspExpert`, and is written to a file that loads as an
ordinary user teacher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from distill_ros.teachers.scripted import ScriptedGraspExpert


class SideApproachGraspExpert(nn.Module):
    """Go to the object's `side` (+1: +y, -1: -y), align in x there, slide in, then grasp.

    Phases, all read from the observation alone: move sideways at a fixed speed (x held)
    until the palm is `offset` metres on its side of the object, align x while keeping the offset,
    slide in along y at hover height, then the top-down grasp of `ScriptedGraspExpert`.
    """

    def __init__(self, side: float, offset: float = 0.05, gain: float = 10.0,
                 max_speed: float = 0.9, max_opening: float = 0.09) -> None:
        super().__init__()
        if side not in (1.0, -1.0):
            raise ValueError(f"side must be +1.0 or -1.0, got {side!r}")
        self.side = side
        self.offset = offset  # m, lateral distance of the approach lane from the object
        self.gain = gain
        self.lane_speed = 0.5  # m/s, sideways speed while heading for the approach lane
        self.grasp = ScriptedGraspExpert(gain, max_speed, max_opening)
        self.max_speed = max_speed

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 15) grasp observation -> (B, 4) [vx, vy, vz, opening] in m/s and m."""
        final = self.grasp(obs)
        rel = obs[:, 4:7]                       # object centre minus grasp point, m
        grasped = (obs[:, 13] > 0.5) & (obs[:, 14] > 0.5)
        x_ok = rel[:, 0].abs() < 0.006
        on_side = -self.side * rel[:, 1] > self.offset - 0.01   # palm in its approach lane
        # in the lane: track it; outside: head for it sideways at a fixed speed, x held
        lane_vy = torch.where(on_side, self.gain * (rel[:, 1] + self.side * self.offset),
                              torch.full_like(rel[:, 1], self.side * self.lane_speed))
        vx = torch.where(on_side, self.gain * rel[:, 0], torch.zeros_like(rel[:, 0]))
        hover_vz = self.gain * (rel[:, 2] + 0.05)
        approach = torch.stack([vx, lane_vy, hover_vz], dim=1)
        approach = torch.clamp(approach, -self.max_speed, self.max_speed)
        use_final = (x_ok & ~(on_side & (rel[:, 1].abs() > self.offset + 0.02))) | grasped
        v = torch.where(use_final.unsqueeze(1), final[:, :3], approach)
        return torch.cat([v, final[:, 3:]], dim=1)


SCRIPTED_EXPERTS: dict[str, Callable[[], nn.Module]] = {
    "scripted": ScriptedGraspExpert,
    "side_pos_y": lambda: SideApproachGraspExpert(1.0),
    "side_neg_y": lambda: SideApproachGraspExpert(-1.0),
}


def save_named_expert(name: str, path: str | Path) -> Path:
    """Write the built-in scripted expert `name` as a TorchScript teacher file."""
    if name not in SCRIPTED_EXPERTS:
        raise ValueError(f"unknown scripted expert {name!r}; valid choices: "
                         f"{sorted(SCRIPTED_EXPERTS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(SCRIPTED_EXPERTS[name]()), str(path))
    return path

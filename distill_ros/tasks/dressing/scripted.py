"""The scripted dresser (`expert.expert_action`) as a TorchScript-able module.

Same rule, batched, computed in float64 like the numpy original: steer the opening's centre to
a point `LOOKAHEAD` further along the arm than its projection, and turn the sleeve's axis onto
the arm there. As a module it can be saved with `torch.jit.script` and used wherever a teacher
file goes (`teachers.algo: scripted`, `teachers.sources`, demonstrations for SAC).
"""

from __future__ import annotations

import torch
from torch import nn

from distill_ros.tasks.dressing.env import MAX_SPEED, MAX_TURN
from distill_ros.tasks.dressing.expert import GAIN, LOOKAHEAD, TURN_GAIN


class DressingExpert(nn.Module):
    """(B, STATE_DIM) privileged state -> (B, 6) twist (m/s, rad/s, world frame)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookahead, self.gain, self.turn_gain = LOOKAHEAD, GAIN, TURN_GAIN
        self.max_speed, self.max_turn = MAX_SPEED, MAX_TURN

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The twist for each row; the state layout is `env.DressingEnv._observe`'s."""
        s = obs.to(torch.float64)
        line = s[:, 3:15].reshape(-1, 4, 3)               # hand tip, wrist, elbow, shoulder
        opening = s[:, 22:25]
        seg = line[:, 1:] - line[:, :-1]                    # (B, 3, 3)
        lengths = torch.linalg.norm(seg, dim=2)             # (B, 3)
        rel = opening.unsqueeze(1) - line[:, :-1]
        t = torch.clamp((rel * seg).sum(2) / lengths ** 2, 0.0, 1.0)
        closest = line[:, :-1] + t.unsqueeze(2) * seg
        k = torch.argmin(torch.linalg.norm(closest - opening.unsqueeze(1), dim=2), dim=1)
        ends = torch.cumsum(lengths, dim=1)
        rows = torch.arange(s.shape[0])
        arc = ends[rows, k] - lengths[rows, k] + t[rows, k] * lengths[rows, k]
        goal = arc + self.lookahead
        j = torch.clamp(torch.searchsorted(ends, goal.unsqueeze(1)).squeeze(1), max=2)
        frac = torch.clamp((goal - (ends[rows, j] - lengths[rows, j])) / lengths[rows, j],
                           0.0, 1.0)
        target = line[rows, j] + frac.unsqueeze(1) * seg[rows, j]
        tangent = seg[rows, j] / lengths[rows, j].unsqueeze(1)
        velocity = torch.clamp(self.gain * (target - opening), -self.max_speed, self.max_speed)
        x, y, z, w = s[:, 18], s[:, 19], s[:, 20], s[:, 21]
        axis = torch.stack([2 * (x * z + w * y), 2 * (y * z - w * x),
                            1 - 2 * (x * x + y * y)], dim=1)  # the gripper's z axis
        turn = torch.clamp(self.turn_gain * torch.linalg.cross(axis, -tangent),
                           -self.max_turn, self.max_turn)
        return torch.cat([velocity, turn], dim=1).to(torch.float32)

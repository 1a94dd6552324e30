"""Per-group encoders: a dict of normalised observation groups -> one feature vector.

- ``vector``: the values as they are; ``history``: the K frames flattened, oldest first.
- ``points``: PointNet (Qi et al. 2017): a shared per-point MLP, then a max over points, so
  the features do not depend on the order of the points.
- ``command``: ``values * mask`` concatenated with ``mask`` (HOVER's masked commands): a
  masked element contributes exactly 0 whatever its value, and the mask tells the network
  which elements are commanded.

Groups are concatenated in spec order. A one-vector-group spec has no parameters here, so a
flat student's weights are exactly those of the student before groups existed.
"""

from __future__ import annotations

import torch
from torch import nn

from distill_ros.spec import Group, ObsSpec

#: width of a points group's feature vector (and of its per-point MLP)
POINT_FEATURES = 64


class PointNetEncoder(nn.Module):
    """(B, N, C) points -> (B, width): shared per-point MLP, max-pool over the N points."""

    def __init__(self, channels: int, width: int = POINT_FEATURES) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, width))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Per-point features, then the channel-wise maximum over points."""
        return self.mlp(points).amax(dim=1)


class GroupEncoder(nn.Module):
    """Normalised input tensors (spec input order) -> (B, out_dim) concatenated features."""

    def __init__(self, spec: ObsSpec, point_features: int = POINT_FEATURES) -> None:
        super().__init__()
        self.spec = spec
        self.points = nn.ModuleDict({g.name: PointNetEncoder(g.channels.dim, point_features)
                                     for g in spec.groups if g.kind == "points"})
        self.out_dim = sum(self._width(g, point_features) for g in spec.groups)

    @staticmethod
    def _width(group: Group, point_features: int) -> int:
        if group.kind == "points":
            return point_features
        return 2 * group.size if group.kind == "command" else group.size

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """Encode every group and concatenate; `inputs` follows `spec.input_names`."""
        feats, i = [], 0
        for g in self.spec.groups:
            x = inputs[i]
            if g.kind == "points":
                feats.append(self.points[g.name](x))
            elif g.kind == "command":
                mask = inputs[i + 1]
                feats += [x * mask, mask]
                i += 1
            else:
                feats.append(x.flatten(1))
            i += 1
        return feats[0] if len(feats) == 1 else torch.cat(feats, dim=-1)

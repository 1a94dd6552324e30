"""Multi-layer perceptron student core."""

from __future__ import annotations

from torch import nn


def make_mlp(in_dim: int, out_dim: int, hidden: list[int]) -> nn.Sequential:
    """ELU MLP with a linear output (targets are in [-1, 1]; the clamp lives in the policy)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ELU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)

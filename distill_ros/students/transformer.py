"""Small transformer over observation tokens (UniGraspTransformer's student, scaled down).

Each observation element becomes one token: its value times a learned direction plus a
learned embedding of which element it is. Attention is written out (not nn.MultiheadAttention)
so the legacy ONNX exporter never meets PyTorch's fused fast-path kernels.
"""

from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    """Pre-norm self-attention block."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(),
                                 nn.Linear(2 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // h) ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class ObsTokenTransformer(nn.Module):
    """(B, obs_dim) normalised observation -> (B, act_dim) normalised action."""

    def __init__(self, obs_dim: int, act_dim: int, d_model: int, n_heads: int,
                 n_layers: int) -> None:
        super().__init__()
        self.value_dir = nn.Parameter(torch.randn(obs_dim, d_model) * 0.1)
        self.slot = nn.Parameter(torch.randn(obs_dim, d_model) * 0.1)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.blocks = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, act_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Tokenise, attend, read the action off the class token."""
        tokens = obs.unsqueeze(-1) * self.value_dir + self.slot
        x = torch.cat([self.cls.expand(obs.shape[0], -1, -1), tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))

"""Denoiser network for short action chunks: a residual MLP with FiLM conditioning.

Why an MLP over the flattened chunk and not Diffusion Policy's 1-D temporal conv
U-Net (Chi et al. 2023): our chunks are short (H ≈ 8 steps of ≈ 4 joints, 32 numbers),
so a U-Net's down-sampling has nothing to compress and forces H to a multiple of 4.
The MLP sees the whole chunk at once, trains to a good bimodal fit in seconds on one
CPU core, costs one small GEMM chain per call (which is what makes the one-step
generator fast), and exports to ONNX with plain MatMul/LayerNorm ops.

Timestep t and observation each go through a small MLP; their sum modulates every
residual block by feature-wise affine scaling (FiLM, Perez et al. 2018), the same
conditioning Diffusion Policy's U-Net uses.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, Ho et al. 2020).

    Args:
        t: timesteps, shape (B,), any numeric dtype.
        dim: embedding width (even).
        max_period: longest wavelength.

    Returns:
        (B, dim) float32 tensor [cos(t ω_i), sin(t ω_i)].
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class FiLMResBlock(nn.Module):
    """h + MLP(LayerNorm(h) · (1 + scale(c)) + shift(c))."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Apply the block; ``h`` and ``cond`` are (B, hidden)."""
        scale, shift = self.film(cond).chunk(2, dim=-1)
        return h + self.mlp(self.norm(h) * (1.0 + scale) + shift)


class ChunkDenoiser(nn.Module):
    """Maps (noisy flattened chunk, timestep, observation) to ε̂ or x̂_0 (flattened).

    Args:
        chunk_dim: H · act_dim.
        cond_dim: observation width (obs_dim · obs_history).
        hidden: width of every layer.
        n_blocks: number of FiLM residual blocks.
        time_embed_dim: width of the sinusoidal timestep embedding.
    """

    def __init__(
        self, chunk_dim: int, cond_dim: int, hidden: int, n_blocks: int, time_embed_dim: int
    ) -> None:
        super().__init__()
        self.time_embed_dim = time_embed_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(time_embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.obs_mlp = nn.Sequential(
            nn.Linear(cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.inp = nn.Linear(chunk_dim, hidden)
        self.blocks = nn.ModuleList(FiLMResBlock(hidden) for _ in range(n_blocks))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, chunk_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Denoise.

        Args:
            x: noisy chunk, (B, chunk_dim).
            t: integer timesteps, (B,).
            obs: normalised observation, (B, cond_dim).

        Returns:
            (B, chunk_dim) network output (ε̂ or x̂_0, per the policy's parameterisation).
        """
        cond = nn.functional.silu(
            self.time_mlp(timestep_embedding(t, self.time_embed_dim)) + self.obs_mlp(obs)
        )
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(nn.functional.silu(self.out_norm(h)))

"""A tiny bimodal action dataset shared by the diffusion and one-step tests."""

import torch

MODE = 0.7
OBS_DIM, ACT_DIM, H = 3, 2, 4


def bimodal_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Obs ~ N(0, I); the whole chunk is +0.7 or -0.7 with probability 1/2 each."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS_DIM, generator=g)
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    return obs, (MODE * sign)[:, None, None].expand(n, H, ACT_DIM).clone()


def mode_fractions(chunks: torch.Tensor) -> tuple[float, float, float]:
    """Fractions of chunks whose mean is near +0.7, near -0.7, and in between (|m| < 0.4)."""
    m = chunks.mean(dim=(1, 2))
    pos = (m - MODE).abs().lt(0.15).float().mean().item()
    neg = (m + MODE).abs().lt(0.15).float().mean().item()
    mid = m.abs().lt(0.4).float().mean().item()
    return pos, neg, mid


def conditional_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Obs ~ N(0, I); the chunk is +0.7 where obs[0] > 0 and -0.7 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS_DIM, generator=g)
    sign = torch.where(obs[:, 0] > 0, 1.0, -1.0)
    return obs, (MODE * sign)[:, None, None].expand(n, H, ACT_DIM).clone()


def follows_obs(chunks: torch.Tensor, obs: torch.Tensor) -> float:
    """Fraction of chunks within 0.15 of the mode that obs[0]'s sign selects."""
    want = torch.where(obs[:, 0] > 0, MODE, -MODE)
    return (chunks.mean(dim=(1, 2)) - want).abs().lt(0.15).float().mean().item()

"""DDPM noise schedules and their closed forms.

Implements the forward process of Ho et al. 2020 ("Denoising Diffusion Probabilistic
Models", arXiv 2006.11239): q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I) with
ᾱ_t = prod_{s<=t} (1 - β_s) (Eq. 4), and the posterior q(x_{t-1} | x_t, x_0) with
mean μ̃_t = c0_t x_0 + ct_t x_t and variance β̃_t (Eqs. 6-7). Timesteps are 0-based:
t = 0 is the least noisy step, t = T - 1 the most noisy, and ᾱ_{-1} = 1.

The cosine schedule is Nichol & Dhariwal 2021 ("Improved DDPM", arXiv 2102.09672,
Eq. 17); it is the one Diffusion Policy (Chi et al. 2023) uses for action chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("cosine", "linear")


def cosine_alpha_bar(t: torch.Tensor, num_steps: int, s: float = 0.008) -> torch.Tensor:
    """Continuous ᾱ(t) = f(t) / f(0), f(t) = cos²(((t / T) + s) / (1 + s) · π / 2) (Eq. 17).

    Args:
        t: time in [0, T] (float64 recommended); ᾱ of 0-based step k is ``t = k + 1``.
        num_steps: T.
        s: small offset that keeps β_0 from being vanishingly small.
    """
    f = torch.cos(((t / num_steps) + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return f / f0


def cosine_betas(num_steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """β_t = 1 - ᾱ(t+1) / ᾱ(t), clipped at ``max_beta`` (Improved DDPM, Sec. 3.2)."""
    t = torch.arange(num_steps + 1, dtype=torch.float64)
    ab = cosine_alpha_bar(t, num_steps)
    return torch.clamp(1.0 - ab[1:] / ab[:-1], max=max_beta)


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Linear β from Ho et al. 2020, rescaled by 1000 / T so any T ends near pure noise.

    The rescaling is Improved DDPM's (their code, ``get_named_beta_schedule``); without
    it a 100-step linear schedule stops at ᾱ_T ≈ 0.36, far from N(0, I).
    """
    scale = 1000.0 / num_steps
    return torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64)


@dataclass(frozen=True)
class NoiseSchedule:
    """All per-step coefficients of a DDPM, as float64 tensors of shape (T,).

    Attributes:
        betas: β_t.
        alphas: α_t = 1 - β_t.
        alphas_cumprod: ᾱ_t = prod_{s<=t} α_s.
        alphas_cumprod_prev: ᾱ_{t-1}, with ᾱ_{-1} = 1.
        posterior_variance: β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) (Ho et al. Eq. 7).
        posterior_mean_coef_x0: β_t sqrt(ᾱ_{t-1}) / (1 - ᾱ_t) (Eq. 7).
        posterior_mean_coef_xt: (1 - ᾱ_{t-1}) sqrt(α_t) / (1 - ᾱ_t) (Eq. 7).
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_mean_coef_x0: torch.Tensor
    posterior_mean_coef_xt: torch.Tensor

    @property
    def num_steps(self) -> int:
        """T, the number of diffusion steps."""
        return int(self.betas.shape[0])

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> NoiseSchedule:
        """Derive every coefficient from β_t (float64 for exactness)."""
        betas = betas.to(torch.float64)
        alphas = 1.0 - betas
        ab = torch.cumprod(alphas, dim=0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        return cls(
            betas=betas,
            alphas=alphas,
            alphas_cumprod=ab,
            alphas_cumprod_prev=ab_prev,
            posterior_variance=betas * (1.0 - ab_prev) / (1.0 - ab),
            posterior_mean_coef_x0=betas * torch.sqrt(ab_prev) / (1.0 - ab),
            posterior_mean_coef_xt=(1.0 - ab_prev) * torch.sqrt(alphas) / (1.0 - ab),
        )


def make_schedule(kind: str, num_steps: int) -> NoiseSchedule:
    """Build the named schedule ("cosine" or "linear") with ``num_steps`` steps."""
    if kind == "cosine":
        return NoiseSchedule.from_betas(cosine_betas(num_steps))
    if kind == "linear":
        return NoiseSchedule.from_betas(linear_betas(num_steps))
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")

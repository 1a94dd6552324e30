"""Distillation losses in the normalised [-1, 1] action space.

`mse` and `huber` regress the student's mean onto the teacher's mean. For Gaussian teachers
(SB3 PPO/SAC give a mean and a std), `forward_kl` is KL(teacher ‖ student) and `reverse_kl`
is KL(student ‖ teacher) between diagonal Gaussians, summed over action dimensions and
averaged over the batch. The student's std is a learned, state-independent head
(`GaussianHead`, as rsl_rl's actors keep it); the exported student is the mean action.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

Loss = Callable[..., torch.Tensor]


def gaussian_kl(mu_p: torch.Tensor, std_p: torch.Tensor, mu_q: torch.Tensor,
                std_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(p ‖ q) for diagonal Gaussians, summed over dimensions.

    KL = Σ_d log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²) / (2σ_q²) − ½.
    """
    var_p, var_q = std_p ** 2, std_q ** 2
    kl = torch.log(std_q / std_p) + (var_p + (mu_p - mu_q) ** 2) / (2.0 * var_q) - 0.5
    return kl.sum(-1).mean()


def mse(student_mean: torch.Tensor, teacher_mean: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the means."""
    return F.mse_loss(student_mean, teacher_mean)


def make_huber(delta: float) -> Loss:
    """Huber loss with transition point `delta` (normalised action units)."""
    def huber(student_mean: torch.Tensor, teacher_mean: torch.Tensor,
              **_: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(student_mean, teacher_mean, delta=delta)
    return huber


def forward_kl(student_mean: torch.Tensor, teacher_mean: torch.Tensor, *,
               student_std: torch.Tensor, teacher_std: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student): mode-covering; the student's std grows to cover the teacher's."""
    return gaussian_kl(teacher_mean, teacher_std, student_mean, student_std)


def reverse_kl(student_mean: torch.Tensor, teacher_mean: torch.Tensor, *,
               student_std: torch.Tensor, teacher_std: torch.Tensor) -> torch.Tensor:
    """KL(student ‖ teacher): mode-seeking, weighted by the teacher's confidence 1/σ_t²."""
    return gaussian_kl(student_mean, student_std, teacher_mean, teacher_std)


GAUSSIAN_LOSSES = ("forward_kl", "reverse_kl")


def make_loss(name: str, huber_delta: float = 1.0) -> Loss:
    """The loss named `name` (dagger.loss)."""
    losses: dict[str, Loss] = {"mse": mse, "huber": make_huber(huber_delta),
                               "forward_kl": forward_kl, "reverse_kl": reverse_kl}
    if name not in losses:
        raise ValueError(f"dagger.loss must be one of {sorted(losses)}, got {name!r}")
    return losses[name]


class GaussianHead(nn.Module):
    """A state-independent log std per action dimension (normalised units), trained by KL."""

    def __init__(self, act_dim: int, init_log_std: float) -> None:
        super().__init__()
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    def forward(self, mean: torch.Tensor) -> torch.Tensor:
        """The std broadcast to `mean`'s shape."""
        return torch.exp(self.log_std).expand_as(mean)

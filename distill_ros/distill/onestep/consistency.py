"""Consistency distillation (CD) of a DDPM action-chunk teacher, as in Consistency Policy.

The baseline OneDP is compared against (Prasad et al. 2024, "Consistency Policy", after
Song et al. 2023, "Consistency Models", arXiv 2303.01469, Alg. 2). Notation as in
`distiller.py`: A_k = α_k A + σ_k ε with α_k = sqrt(ᾱ_k), σ_k = sqrt(1 - ᾱ_k).

* Consistency function, in the EDM scaling x = A_k / α_k with noise level s_k = σ_k / α_k
  (Song et al. App. C): f_θ(A_k, k, O) = c_skip(k) A_k / α_k + c_out(k) F_θ(A_k, k, O) with
  c_skip = σ_d² / ((s_k - s_min)² + σ_d²), c_out = σ_d (s_k - s_min) / sqrt(σ_d² + s_k²),
  σ_d = 0.5. At the boundary k = 0, c_skip = 1 and c_out = 0 exactly, so f_θ(A_0, 0) = A_0 / α_0
  for any weights. F_θ is a copy of the teacher's x̂_0 denoiser (its initialisation).
* Training (CD): the grid k_0 = 0 < k_1 < ... < k_N = T - 1. Draw a data chunk A, n, ε;
  A_{k_{n+1}} = q(A, k_{n+1}, ε); one DDIM (probability-flow ODE) step of the teacher
  gives Â_{k_n}; loss ‖f_θ(A_{k_{n+1}}, k_{n+1}) - f_θ⁻(Â_{k_n}, k_n)‖² with θ⁻ an EMA of θ
  (no gradient through the target).
* Sampling: one step A = f_θ(z, k_N), z ~ N(0, I); two steps re-noise that to k_mid with
  fresh noise and apply f_θ again (Song et al. Alg. 1).
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from distill_ros.atomic import atomic_torch_save
from distill_ros.teachers.diffusion import DiffusionPolicy

SIGMA_DATA = 0.5


@dataclass
class ConsistencyConfig:
    """Settings of :class:`ConsistencyDistiller`, validated on construction.

    Attributes:
        lr: Adam learning rate of θ.
        ema: decay of the target network θ⁻ (Song et al. use 0.95 for CD).
        grid_steps: N, the number of teacher ODE steps between k = 0 and k = T - 1.
        mid_frac: k_mid of two-step sampling as a fraction of T.
        grad_clip: max gradient norm.
        seed: seeds data, noise and grid sampling.
    """

    lr: float = 1e-4
    ema: float = 0.95
    grid_steps: int = 20
    mid_frac: float = 0.3
    grad_clip: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.lr > 0 or not self.grad_clip > 0:
            raise ValueError(f"lr and grad_clip must be > 0, got {self.lr!r}, {self.grad_clip!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema!r}")
        if not isinstance(self.grid_steps, int) or self.grid_steps < 1:
            raise ValueError(f"grid_steps must be an integer >= 1, got {self.grid_steps!r}")
        if not 0.0 < self.mid_frac < 1.0:
            raise ValueError(f"mid_frac must be in (0, 1), got {self.mid_frac!r}")


class ConsistencyGenerator(nn.Module):
    """f_θ(obs, noise) -> chunk in [-1, 1] in one evaluation; same signature as OneDP's G_θ.

    `consistency(a_k, k, obs)` is the consistency function itself (any k, unclipped).
    """

    def __init__(self, teacher: DiffusionPolicy) -> None:
        super().__init__()
        cfg = teacher.cfg
        self.horizon, self.act_dim, self.cond_dim = cfg.horizon, cfg.act_dim, cfg.cond_dim
        self.eps_prediction = cfg.prediction == "epsilon"
        self.net = copy.deepcopy(teacher.net)
        ab = teacher.alphas_cumprod.detach().clone()
        self.register_buffer("alpha", torch.sqrt(ab))
        self.register_buffer("sigma", torch.sqrt(1.0 - ab))
        s = self.sigma / self.alpha                          # EDM noise level per step
        s_min = s[0]
        self.register_buffer("c_skip", SIGMA_DATA ** 2 / ((s - s_min) ** 2 + SIGMA_DATA ** 2))
        self.register_buffer("c_out", SIGMA_DATA * (s - s_min) / torch.sqrt(SIGMA_DATA ** 2
                                                                            + s ** 2))
        self.c_skip[0], self.c_out[0] = 1.0, 0.0             # exact boundary, no rounding
        self.register_buffer("top", torch.tensor([cfg.num_train_steps - 1], dtype=torch.long))

    def consistency(self, a_k: torch.Tensor, k: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """f_θ(A_k, k, O), (B, H, A); k has shape (B,) or (1,)."""
        out = self.net(a_k.flatten(1), k, obs).view(a_k.shape)
        alpha, sigma = self.alpha[k].view(-1, 1, 1), self.sigma[k].view(-1, 1, 1)
        if self.eps_prediction:
            out = (a_k - sigma * out) / alpha
        return self.c_skip[k].view(-1, 1, 1) * a_k / alpha + self.c_out[k].view(-1, 1, 1) * out

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One-step sample from obs (B, cond) and noise (B, H, A), clipped to [-1, 1]."""
        return self.consistency(noise, self.top, obs).clamp(-1.0, 1.0)

    def two_step(self, obs: torch.Tensor, noise: torch.Tensor, noise2: torch.Tensor,
                 k_mid: int) -> torch.Tensor:
        """Two-step sample: denoise, re-noise to `k_mid` with `noise2`, denoise again."""
        a = self.forward(obs, noise)
        k = torch.tensor([k_mid], dtype=torch.long, device=obs.device)
        a_mid = self.alpha[k_mid] * a + self.sigma[k_mid] * noise2
        return self.consistency(a_mid, k, obs).clamp(-1.0, 1.0)


class ConsistencyDistiller:
    """CD of a DDPM teacher into a :class:`ConsistencyGenerator` (module docstring).

    Args:
        teacher: trained diffusion policy (read only).
        cfg: distillation settings.
    """

    def __init__(self, teacher: DiffusionPolicy, cfg: ConsistencyConfig) -> None:
        self.teacher, self.cfg = teacher, cfg
        self.model = ConsistencyGenerator(teacher)
        self.target = copy.deepcopy(self.model).requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        T = teacher.cfg.num_train_steps
        grid = np.unique(np.round(np.linspace(0, T - 1, cfg.grid_steps + 1)).astype(int))
        self.grid = torch.as_tensor(grid, dtype=torch.long)
        self.k_mid = self.mid_step(self.model, cfg)
        self.num_updates = 0

    @staticmethod
    def mid_step(model: ConsistencyGenerator, cfg: ConsistencyConfig) -> int:
        """k_mid of two-step sampling: `mid_frac` of the top step."""
        return int(round(cfg.mid_frac * int(model.top)))

    @torch.no_grad()
    def _teacher_step(self, a: torch.Tensor, k: torch.Tensor, k_prev: torch.Tensor,
                      obs: torch.Tensor) -> torch.Tensor:
        """One DDIM (η = 0) step of the teacher's probability-flow ODE from k to k_prev."""
        x0, _ = self.teacher.predict_x0_eps(a, k, obs)
        x0 = x0.clamp(-1.0, 1.0)
        ab = self.teacher.alphas_cumprod[k].view(-1, 1, 1)
        ab_prev = self.teacher.alphas_cumprod[k_prev].view(-1, 1, 1)
        eps = (a - torch.sqrt(ab) * x0) / torch.sqrt(1.0 - ab)
        return torch.sqrt(ab_prev) * x0 + torch.sqrt(1.0 - ab_prev) * eps

    def update(self, obs: torch.Tensor, chunks: torch.Tensor) -> dict[str, float]:
        """One CD step on normalised obs (B, cond) and data chunks (B, H, A) in [-1, 1]."""
        self.teacher.check_obs(obs)
        n = torch.randint(0, len(self.grid) - 1, (obs.shape[0],), generator=self.rng)
        k_prev, k = self.grid[n], self.grid[n + 1]
        eps = torch.randn(chunks.shape, generator=self.rng)
        a_k = self.teacher.q_sample(chunks, k, eps)
        with torch.no_grad():
            target = self.target.consistency(self._teacher_step(a_k, k, k_prev, obs), k_prev,
                                             obs)
        loss = ((self.model.consistency(a_k, k, obs) - target) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            for p_t, p in zip(self.target.parameters(), self.model.parameters()):
                p_t.mul_(self.cfg.ema).add_(p, alpha=1.0 - self.cfg.ema)
        self.num_updates += 1
        return {"loss_consistency": float(loss.detach())}

    def get_policy(self) -> ConsistencyGenerator:
        """The consistency model f_θ (``forward(obs, noise)`` is its one-step sampler)."""
        return self.model

    def save(self, path: str) -> None:
        """Write θ, θ⁻, optimiser and RNG to ``path`` atomically."""
        atomic_torch_save(path, {"cfg": asdict(self.cfg), "model": self.model.state_dict(),
                                 "target": self.target.state_dict(),
                                 "opt": self.opt.state_dict(), "rng": self.rng.get_state(),
                                 "num_updates": self.num_updates})

    def load(self, path: str) -> None:
        """Restore a checkpoint written by :meth:`save`."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no consistency checkpoint at {path}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.model.load_state_dict(state["model"])
        self.target.load_state_dict(state["target"])
        self.opt.load_state_dict(state["opt"])
        self.rng.set_state(state["rng"])
        self.num_updates = state["num_updates"]

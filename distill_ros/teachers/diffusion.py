"""Diffusion policy teacher: a DDPM over action chunks conditioned on the observation.

Follows Diffusion Policy (Chi et al. 2023, arXiv 2303.04137): the policy models
p(A | O) for an action chunk A of H steps, executes the first ``n_exec`` of them, and
is trained with the DDPM objective (Ho et al. 2020, Eq. 14)
``E_{t, ε} || ε - ε_φ(sqrt(ᾱ_t) A + sqrt(1 - ᾱ_t) ε, t, O) ||²`` (``prediction="epsilon"``)
or its x_0 form ``|| A - x̂_φ(...) ||²`` (``prediction="sample"``).

Normalisation contract: every tensor this module sees is ALREADY NORMALISED. The
observation is standardised (zero mean, unit variance per feature) and given as the
flattened history of ``obs_history`` frames, shape (B, obs_dim · obs_history); actions
are scaled to [-1, 1], shape (B, H, act_dim). Samples are clipped to [-1, 1]. The
pipeline wraps (un)normalisation around this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from distill_ros.teachers.diffusion_net import ChunkDenoiser
from distill_ros.teachers.diffusion_schedule import SCHEDULES, make_schedule

logger = logging.getLogger(__name__)

PREDICTIONS = ("epsilon", "sample")
SAMPLERS = ("ddpm", "ddim")


def _draw(fn, generator: Optional[torch.Generator], device: torch.device, *args) -> torch.Tensor:
    """``fn(*args)`` drawn on the generator's device, then moved to ``device``.

    A seeded CPU generator keeps runs reproducible whichever device the model is on
    (torch refuses a CPU generator for a CUDA tensor).
    """
    if generator is None:
        return fn(*args, device=device)
    return fn(*args, generator=generator, device=generator.device).to(device)


@dataclass
class DiffusionConfig:
    """Configuration of a :class:`DiffusionPolicy`, validated on construction.

    Attributes:
        obs_dim: features per observation frame.
        act_dim: action dimensions per step.
        horizon: H, steps per predicted action chunk.
        n_exec: steps of each chunk that are executed (1 <= n_exec <= H).
        obs_history: frames of observation history, given flattened.
        num_train_steps: T, diffusion steps.
        schedule: noise schedule, "cosine" or "linear".
        prediction: network target, "sample" (x_0) or "epsilon" (ε). x_0 is the default
            because the one-step generator (distill/onestep/distiller.py) then starts as the
            teacher's x_0 head at k* = T - 1 with no division by sqrt(ᾱ); on our bimodal
            toy ε-teachers sample as well but distil unstably.
        hidden_dim: width of the denoiser MLP.
        n_blocks: residual blocks in the denoiser.
        time_embed_dim: width of the sinusoidal timestep embedding (even).
        ddim_steps: default number of DDIM steps when ``sample(sampler="ddim")``.
        seed: seed of the weight initialisation.
    """

    obs_dim: int
    act_dim: int
    horizon: int = 8
    n_exec: int = 4
    obs_history: int = 1
    num_train_steps: int = 100
    schedule: str = "cosine"
    prediction: str = "sample"
    hidden_dim: int = 256
    n_blocks: int = 3
    time_embed_dim: int = 64
    ddim_steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("obs_dim", "act_dim", "horizon", "n_exec", "obs_history", "hidden_dim",
                     "n_blocks", "ddim_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_exec > self.horizon:
            raise ValueError(
                f"n_exec must be <= horizon ({self.horizon}), got {self.n_exec}"
            )
        if not isinstance(self.num_train_steps, int) or self.num_train_steps < 2:
            raise ValueError(
                f"num_train_steps must be an integer >= 2, got {self.num_train_steps!r}"
            )
        if self.ddim_steps > self.num_train_steps:
            raise ValueError(
                f"ddim_steps must be <= num_train_steps ({self.num_train_steps}), "
                f"got {self.ddim_steps}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(
                f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}"
            )
        if self.time_embed_dim < 2 or self.time_embed_dim % 2:
            raise ValueError(
                f"time_embed_dim must be an even integer >= 2, got {self.time_embed_dim!r}"
            )

    @property
    def cond_dim(self) -> int:
        """Width of the flattened observation input, obs_dim · obs_history."""
        return self.obs_dim * self.obs_history


class DiffusionPolicy(nn.Module):
    """DDPM action-chunk policy p_φ(A | O) with DDPM and DDIM samplers.

    Args:
        cfg: the policy's configuration; weights are initialised from ``cfg.seed``
            without touching the global RNG.
    """

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.net = ChunkDenoiser(
                cfg.horizon * cfg.act_dim, cfg.cond_dim, cfg.hidden_dim, cfg.n_blocks,
                cfg.time_embed_dim,
            )
        sched = make_schedule(cfg.schedule, cfg.num_train_steps)
        # Coefficients are derived from cfg, so they stay out of the state_dict.
        for name in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance",
                     "posterior_mean_coef_x0", "posterior_mean_coef_xt"):
            self.register_buffer(name, getattr(sched, name).to(torch.float32), persistent=False)

    # -- shapes ---------------------------------------------------------------------------
    def check_obs(self, obs: torch.Tensor) -> None:
        """Raise ValueError unless ``obs`` is (B, obs_dim · obs_history)."""
        if obs.dim() != 2 or obs.shape[1] != self.cfg.cond_dim:
            raise ValueError(
                f"obs must have shape (B, obs_dim * obs_history) = (B, {self.cfg.cond_dim}), "
                f"got {tuple(obs.shape)}"
            )

    def _coef(self, buf: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return buf[t].view(-1, 1, 1)

    # -- model ----------------------------------------------------------------------------
    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Raw network output (ε̂ or x̂_0) for noisy chunks ``x_t`` (B, H, A) at steps ``t``."""
        out = self.net(x_t.flatten(1), t, obs)
        return out.view(x_t.shape)

    def predict_x0_eps(
        self, x_t: torch.Tensor, t: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x̂_0, ε̂) whatever the parameterisation, via x_t = sqrt(ᾱ) x_0 + sqrt(1-ᾱ) ε."""
        out = self.denoise(x_t, t, obs)
        ab = self._coef(self.alphas_cumprod, t)
        if self.cfg.prediction == "epsilon":
            return (x_t - torch.sqrt(1.0 - ab) * out) / torch.sqrt(ab), out
        return out, (x_t - torch.sqrt(ab) * out) / torch.sqrt(1.0 - ab)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward process x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε (Ho et al. Eq. 4)."""
        ab = self._coef(self.alphas_cumprod, t)
        return torch.sqrt(ab) * x0 + torch.sqrt(1.0 - ab) * noise

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """DDPM "simple" objective, Ho et al. Eq. 14, on normalised data.

        Args:
            obs: (B, obs_dim · obs_history) standardised observations.
            actions: (B, H, act_dim) chunks in [-1, 1].
            generator: RNG for timesteps and noise.

        Returns:
            Scalar mean-squared error on ε (or x_0 for ``prediction="sample"``).
        """
        self.check_obs(obs)
        expected = (obs.shape[0], self.cfg.horizon, self.cfg.act_dim)
        if tuple(actions.shape) != expected:
            raise ValueError(f"actions must have shape (B, H, act_dim) = {expected}, "
                             f"got {tuple(actions.shape)}")
        b = obs.shape[0]
        t = _draw(torch.randint, generator, obs.device, 0, self.cfg.num_train_steps, (b,))
        noise = _draw(torch.randn, generator, obs.device, actions.shape)
        out = self.denoise(self.q_sample(actions, t, noise), t, obs)
        target = noise if self.cfg.prediction == "epsilon" else actions
        return nn.functional.mse_loss(out, target)

    # -- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, obs: torch.Tensor, steps: Optional[int] = None, sampler: str = "ddpm",
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Draw action chunks A ~ p_φ(A | O), clipped to [-1, 1].

        Args:
            obs: normalised observations, (B, obs_dim · obs_history).
            steps: denoising steps; DDPM uses all T (``None`` or T), DDIM defaults to
                ``cfg.ddim_steps``.
            sampler: "ddpm" (ancestral, Ho et al. Alg. 2) or "ddim" (η = 0, Song et al.
                2021, arXiv 2010.02502, Eq. 12).
            generator: RNG for reproducible samples.

        Returns:
            (B, H, act_dim) chunks in [-1, 1].
        """
        self.check_obs(obs)
        T = self.cfg.num_train_steps
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if sampler == "ddpm" and steps not in (None, T):
            raise ValueError(f"steps must be None or {T} for the ddpm sampler, got {steps!r}; "
                             "use sampler='ddim' for fewer steps")
        steps = T if sampler == "ddpm" else (steps or self.cfg.ddim_steps)
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in [1, {T}], got {steps}")
        shape = (obs.shape[0], self.cfg.horizon, self.cfg.act_dim)
        x = _draw(torch.randn, generator, obs.device, shape)
        if sampler == "ddpm":
            return self._ddpm_loop(x, obs, generator)
        return self._ddim_loop(x, obs, steps)

    def _x0(self, x: torch.Tensor, t: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        x0, _ = self.predict_x0_eps(x, t, obs)
        return x0.clamp(-1.0, 1.0)  # actions live in [-1, 1] (Diffusion Policy's clip_sample)

    def _ddpm_loop(
        self, x: torch.Tensor, obs: torch.Tensor, generator: Optional[torch.Generator]
    ) -> torch.Tensor:
        for step in reversed(range(self.cfg.num_train_steps)):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            x0 = self._x0(x, t, obs)
            mean = (self._coef(self.posterior_mean_coef_x0, t) * x0
                    + self._coef(self.posterior_mean_coef_xt, t) * x)
            if step > 0:
                noise = _draw(torch.randn, generator, x.device, x.shape)
                x = mean + torch.sqrt(self._coef(self.posterior_variance, t)) * noise
            else:
                x = mean
        return x.clamp(-1.0, 1.0)

    @torch.no_grad()
    def ddim_from(self, x: torch.Tensor, start: int, steps: int,
                  obs: torch.Tensor) -> torch.Tensor:
        """DDIM (η = 0) from a chunk ``x`` taken as x_start, over ``steps`` denoiser calls."""
        return self._ddim_loop(x, obs, steps, start)

    def _ddim_loop(self, x: torch.Tensor, obs: torch.Tensor, steps: int,
                   start: Optional[int] = None) -> torch.Tensor:
        T = self.cfg.num_train_steps
        ts = torch.linspace(T - 1 if start is None else start, 0, steps).round().long().tolist()
        for i, step in enumerate(ts):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            x0 = self._x0(x, t, obs)
            ab = self._coef(self.alphas_cumprod, t)
            eps = (x - torch.sqrt(ab) * x0) / torch.sqrt(1.0 - ab)  # consistent with clipped x0
            if i + 1 < len(ts):
                ab_prev = self.alphas_cumprod[ts[i + 1]]
                x = torch.sqrt(ab_prev) * x0 + torch.sqrt(1.0 - ab_prev) * eps
            else:
                x = x0
        return x.clamp(-1.0, 1.0)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, sampler: str = "ddim",
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The ``n_exec`` steps of a sampled chunk that get executed, (B, n_exec, act_dim)."""
        return self.sample(obs, sampler=sampler, generator=generator)[:, : self.cfg.n_exec]


def teacher_optimizer(policy: nn.Module, lr: float, steps: int):
    """The teacher's schedule: AdamW with a cosine decay to 5% of `lr` over `steps`."""
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    return opt, sched


def teacher_step(policy: "DiffusionPolicy", opt, sched, obs: torch.Tensor,
                 actions: torch.Tensor, batch_size: int, gen: torch.Generator) -> float:
    """One denoising update on a minibatch drawn with replacement; returns its loss."""
    idx = torch.randint(0, obs.shape[0], (batch_size,), generator=gen)
    loss = policy.loss(obs[idx], actions[idx], generator=gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return float(loss.detach())


def fit_diffusion(
    policy: DiffusionPolicy, obs: torch.Tensor, actions: torch.Tensor, steps: int,
    batch_size: int = 256, lr: float = 1e-3, seed: int = 0, progress: bool = False,
) -> list[float]:
    """Train ``policy`` on a normalised dataset with AdamW and a cosine learning-rate decay.

    Args:
        policy: the teacher to train in place.
        obs: (N, obs_dim · obs_history) normalised observations.
        actions: (N, H, act_dim) action chunks in [-1, 1].
        steps: gradient steps.
        batch_size: minibatch size (sampled with replacement).
        lr: peak learning rate.
        seed: seeds minibatch and noise sampling.
        progress: show a tqdm bar.

    Returns:
        The loss of every step.
    """
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt, sched = teacher_optimizer(policy, lr, steps)
    policy.train()
    losses = [teacher_step(policy, opt, sched, obs, actions, batch_size, gen)
              for _ in tqdm(range(steps), disable=not progress, desc="diffusion teacher")]
    policy.eval()
    logger.info("diffusion teacher: %d steps, loss %.4f -> %.4f", steps, losses[0], losses[-1])
    return losses

"""One-Step Diffusion Policy (OneDP; Wang et al. 2024, arXiv 2410.21257).

Distils a :class:`~distill_ros.teachers.diffusion.DiffusionPolicy` teacher π_φ into a
generator G_θ that turns noise into an action chunk in ONE network evaluation.

What is implemented (OneDP Sec. 3; notation A_k = α_k A + σ_k ε, α_k = sqrt(ᾱ_k),
σ_k = sqrt(1 - ᾱ_k)):

* Objective: KL along the diffusion chain, E_k D_KL(p_θ(A_k | O) || π_φ(A_k | O)),
  whose gradient is E[w(k) (s_θ(A_k) - s_φ(A_k)) ∂A_k/∂θ] with scores s = -ε̂ / σ_k and
  ∂A_k/∂A_θ = α_k. Written in x_0 space (x̂_0 = (A_k - σ_k ε̂) / α_k, so s_θ - s_φ =
  α_k (x̂_0^gen - x̂_0^teacher) / σ_k²) the per-sample gradient on the generator output
  A_θ is ``w(k) ᾱ_k / σ_k² · (x̂_0^gen - x̂_0^teacher)``: the sample moves towards the
  teacher's denoised estimate and away from the generator-score network's.
  ``weighting="sigma2"`` (default, OneDP's choice) takes w(k) = σ_k², leaving
  ``ᾱ_k (x̂_0^gen - x̂_0^teacher)``. ``weighting="dmd"`` instead normalises per sample
  as Diff-Instruct / DMD do (Yin et al. 2024, Eq. 8): ``(x̂_0^gen - x̂_0^teacher) /
  mean|A_θ - x̂_0^teacher|`` with both x̂_0 clipped to [-1, 1], a step size invariant
  to k. k ~ U[t_min_frac, t_max_frac] · T; the defaults 0.02..0.95 follow OneDP's
  [2, 95] of T = 100. The gradient enters through the surrogate loss
  ½ || A_θ - sg(A_θ - grad) ||² (no gradient flows through either score network).
* OneDP-S (``variant="stochastic"``): A_θ = G_θ(O, z), z ~ N(0, I). The generator
  score s_θ is an auxiliary network ψ, initialised from the teacher and trained by
  denoising score matching (the teacher's own DDPM loss) on detached generator
  samples, ``score_updates`` steps per generator step (alternating, as OneDP and DMD do).
* OneDP-D (``variant="deterministic"``): A_θ = G_θ(O) (the noise input is multiplied
  by 0, so the ONNX signature stays the same). p_θ(A | O) is a Dirac, so the score of
  p_θ(A_k | O) is known in closed form, -ε / σ_k: the auxiliary network is replaced by
  the noise ε that was added, x̂_0^gen = A_θ, and the gradient becomes
  ``(ε̂_teacher - ε) · w'`` (score distillation sampling; mode-seeking).
* Initialisation (OneDP: "G_θ initialised from the pretrained π_φ"): G_θ(O, z) is the
  teacher's x̂_0 prediction at a fixed step k* with z in the place of A_{k*}. The
  default k* is T - 1 for x_0-predicting teachers and, for ε-predicting teachers, the
  largest k with ᾱ_k >= 0.01, because x̂_0 = (z - σ ε̂) / α divides by α and α_{T-1}
  is ≈ 5e-4 for the cosine schedule. Measured on the bimodal toy of the tests: x_0
  teachers distil reliably at lr 1e-4; ε teachers oscillate (the 1/α ≈ 10 factor
  amplifies every generator step), so prefer ``DiffusionConfig(prediction="sample")``.

* Side bit and anchor (OneDP-S, off by default; a departure from the paper, measured on
  the detour family in docs/design-notes.md). A continuous map z -> chunk puts some
  samples between two modes, and the KL pushes weakly there. With ``latent_side`` β > 0
  G_θ's input is ``latent_scale · z + β · s · 1`` with s = sign(z[0, 0]): the latent has
  two separated halves. With k* = ``gen_timestep`` low enough that the teacher's x̂_0
  head reads its input (40 of 100 on the detour), the initial G_θ already sends s = +1
  and s = -1 to opposite modes for every observation. ``anchor_weight`` adds DMD's
  regression term (Yin et al. 2024) with the teacher's DDIM sample run from x_{k*} = G_θ's
  input as the target, which keeps that assignment while the KL trains; without it the
  KL's noisy steps let the side flip between observations, and the flips land midway.
  Sampling stays one network evaluation with the same ``(obs, noise)`` inputs.

All tensors are normalised as in the teacher: obs (B, obs_dim · obs_history)
standardised, noise and chunks (B, H, act_dim), chunks clipped to [-1, 1].
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn

from distill_ros.atomic import atomic_path, atomic_torch_save
from distill_ros.checks import in_range
from distill_ros.distill.weight_average import averaged_copy, update_average
from distill_ros.teachers.diffusion import DiffusionPolicy

logger = logging.getLogger(__name__)

VARIANTS = ("stochastic", "deterministic")
WEIGHTINGS = ("sigma2", "dmd")


@dataclass
class OneStepConfig:
    """Configuration of :class:`OneStepDistiller`, validated on construction.

    Attributes:
        variant: "stochastic" (OneDP-S) or "deterministic" (OneDP-D).
        lr_generator: Adam learning rate of G_θ.
        lr_score: Adam learning rate of the generator-score network ψ (OneDP-S only).
        score_updates: ψ steps per G_θ step (OneDP-S only).
        weighting: w(k) of the KL gradient, "sigma2" (OneDP) or "dmd" (module docstring).
        gen_timestep: k* at which G_θ evaluates the teacher's denoiser; None picks the
            default described in the module docstring.
        t_min_frac: smallest diffusion step k of the KL, as a fraction of T (k <= T - 1).
        t_max_frac: largest diffusion step k of the KL, as a fraction of T (k <= T - 1).
        grad_clip: max gradient norm for both optimisers.
        ema_decay: if > 0, an exponential moving average of G_θ's weights (decay per
            update) is kept and is the policy `get_policy` returns (exported, evaluated);
            it smooths the update-to-update oscillation of the generator. 0: G_θ itself.
        latent_side: OneDP-S only. If > 0, G_θ's input is
            ``latent_scale · z + latent_side · sign(z[0, 0]) · 1``: a side bit s = ±1 (the
            sign of the first noise element) shifts every element, so the latent has two
            separated halves (module docstring). 0: the plain Gaussian latent (OneDP).
        latent_scale: OneDP-S only: the factor on z in G_θ's input (1: OneDP).
        anchor_weight: OneDP-S only. If > 0, adds ``anchor_weight · ½|A_θ - A_ref|²``,
            A_ref the teacher's DDIM sample run from x_{k*} = G_θ's input over
            `anchor_steps` steps (DMD's regression term, started at k*). 0: KL only.
        anchor_steps: DDIM steps of the anchor's teacher sample.
        seed: seeds noise and timestep sampling.
    """

    variant: str = "stochastic"
    lr_generator: float = 1e-4
    lr_score: float = 1e-3         # ψ must track the moving generator: 10x its rate
    score_updates: int = 1
    weighting: str = "sigma2"
    gen_timestep: Optional[int] = None
    t_min_frac: float = 0.02
    t_max_frac: float = 0.95
    grad_clip: float = 10.0
    ema_decay: float = 0.0
    latent_side: float = 0.0
    latent_scale: float = 1.0
    anchor_weight: float = 0.0
    anchor_steps: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        for name in ("lr_generator", "lr_score", "grad_clip"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("latent_side", "anchor_weight"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0 (0: off, as in OneDP), got "
                                 f"{getattr(self, name)!r}")
        if not self.latent_scale > 0.0:
            raise ValueError(f"latent_scale must be > 0 (1: OneDP's latent), got "
                             f"{self.latent_scale!r}")
        if not isinstance(self.anchor_steps, int) or self.anchor_steps < 1:
            raise ValueError(f"anchor_steps must be a positive integer, got "
                             f"{self.anchor_steps!r}")
        in_range("ema_decay", self.ema_decay, 0.0, 1.0, high_open=True)  # 0: no average
        if not isinstance(self.score_updates, int) or self.score_updates < 1:
            raise ValueError(
                f"score_updates must be a positive integer, got {self.score_updates!r}")
        if not 0.0 <= self.t_min_frac <= self.t_max_frac <= 1.0:
            raise ValueError("need 0 <= t_min_frac <= t_max_frac <= 1, got "
                             f"t_min_frac={self.t_min_frac!r}, t_max_frac={self.t_max_frac!r}")
        if self.gen_timestep is not None and (
                not isinstance(self.gen_timestep, int) or self.gen_timestep < 0):
            raise ValueError(f"gen_timestep must be None or an integer >= 0, "
                             f"got {self.gen_timestep!r}")


def default_gen_timestep(teacher: DiffusionPolicy) -> int:
    """k* for the generator: T - 1 for x_0 teachers, else the largest k with ᾱ_k >= 0.01."""
    if teacher.cfg.prediction == "sample":
        return teacher.cfg.num_train_steps - 1
    ok = torch.nonzero(teacher.alphas_cumprod >= 0.01).flatten()
    return int(ok.max())


class OneStepGenerator(nn.Module):
    """G_θ(obs, noise) -> action chunk in one network evaluation (OneDP's action generator).

    Args:
        teacher: the diffusion policy whose denoiser initialises G_θ (copied).
        gen_timestep: the fixed diffusion step k* the denoiser is evaluated at.
        stochastic: if False the noise input is ignored (OneDP-D, z ≡ 0).
        latent_side: the side bit's shift (`OneStepConfig.latent_side`; stochastic only).
        latent_scale: the factor on z (`OneStepConfig.latent_scale`; stochastic only).
    """

    def __init__(self, teacher: DiffusionPolicy, gen_timestep: int, stochastic: bool,
                 latent_side: float = 0.0, latent_scale: float = 1.0) -> None:
        super().__init__()
        cfg = teacher.cfg
        if not 0 <= gen_timestep < cfg.num_train_steps:
            raise ValueError(f"gen_timestep must be in [0, {cfg.num_train_steps - 1}], "
                             f"got {gen_timestep}")
        self.horizon, self.act_dim, self.cond_dim = cfg.horizon, cfg.act_dim, cfg.cond_dim
        self.eps_prediction = cfg.prediction == "epsilon"
        self.net = copy.deepcopy(teacher.net)
        ab = teacher.alphas_cumprod[gen_timestep].detach().clone()
        self.register_buffer("gen_timestep", torch.tensor([gen_timestep], dtype=torch.long))
        self.register_buffer("sqrt_ab", torch.sqrt(ab))
        self.register_buffer("sqrt_one_minus_ab", torch.sqrt(1.0 - ab))
        self.register_buffer("noise_scale",
                             torch.tensor(float(latent_scale) if stochastic else 0.0))
        side = None  # a None buffer is not in the state dict: older checkpoints still load
        if latent_side > 0 and stochastic:
            side = torch.tensor(float(latent_side))
        self.register_buffer("side", side)

    def latent(self, noise: torch.Tensor) -> torch.Tensor:
        """G_θ's input for noise (B, H, A): scaled z, shifted by the side bit when set."""
        z = noise * self.noise_scale
        if self.side is not None:
            z = z + self.side * torch.sign(noise[:, :1, :1])
        return z

    def generate(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Unclipped chunk A_θ (B, H, act_dim), the quantity the KL gradient acts on."""
        z = self.latent(noise).flatten(1)
        # t has shape (1,): its embedding broadcasts over the (dynamic) batch.
        out = self.net(z, self.gen_timestep, obs)
        if self.eps_prediction:
            out = (z - self.sqrt_one_minus_ab * out) / self.sqrt_ab
        return out.view(-1, self.horizon, self.act_dim)

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Action chunk in [-1, 1], (B, H, act_dim), from obs (B, cond) and noise (B, H, A)."""
        return self.generate(obs, noise).clamp(-1.0, 1.0)

    def as_onnx(self, path: str, opset: int = 17) -> None:
        """Export to ONNX: inputs ``obs`` (B, cond), ``noise`` (B, H, A); output ``actions``.

        The batch axis is dynamic. The file is written to a temp name, then renamed.
        """
        model = copy.deepcopy(self).cpu().eval()
        obs = torch.zeros(1, self.cond_dim)
        noise = torch.zeros(1, self.horizon, self.act_dim)
        with atomic_path(path) as tmp:
            torch.onnx.export(
                model, (obs, noise), str(tmp), input_names=["obs", "noise"],
                output_names=["actions"], opset_version=opset, dynamo=False,
                dynamic_axes={"obs": {0: "batch"}, "noise": {0: "batch"},
                              "actions": {0: "batch"}},
            )
        logger.info("one-step generator exported to %s", path)


class OneStepDistiller:
    """OneDP distillation of a diffusion teacher into a :class:`OneStepGenerator`.

    The teacher is only read (under ``torch.no_grad``); its weights never change.

    Args:
        teacher: trained diffusion policy π_φ.
        cfg: distillation settings.
    """

    def __init__(self, teacher: DiffusionPolicy, cfg: OneStepConfig) -> None:
        self.teacher = teacher
        self.cfg = cfg
        k_star = default_gen_timestep(teacher) if cfg.gen_timestep is None else cfg.gen_timestep
        self.k_star = k_star
        stochastic = cfg.variant == "stochastic"
        self.generator = OneStepGenerator(teacher, k_star, stochastic, cfg.latent_side,
                                          cfg.latent_scale)
        self.opt_gen = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_generator)
        self.ema: Optional[OneStepGenerator] = None
        if cfg.ema_decay > 0:
            self.ema = averaged_copy(self.generator)
        # OneDP-S: generator-score network ψ, initialised from the teacher.
        self.score: Optional[DiffusionPolicy] = copy.deepcopy(teacher) if stochastic else None
        self.opt_score = (torch.optim.Adam(self.score.parameters(), lr=cfg.lr_score)
                          if self.score is not None else None)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        last = teacher.cfg.num_train_steps - 1
        steps = teacher.cfg.num_train_steps
        self.t_range = (min(round(cfg.t_min_frac * steps), last),
                        min(round(cfg.t_max_frac * steps), last))  # 2..95 for T = 100
        self.num_updates = 0
        logger.info("OneDP-%s: k*=%d, KL steps %s, weighting %s", "S" if stochastic else "D",
                    k_star, self.t_range, cfg.weighting)

    def _noise(self, obs: torch.Tensor) -> torch.Tensor:
        shape = (obs.shape[0], self.teacher.cfg.horizon, self.teacher.cfg.act_dim)
        return torch.randn(shape, generator=self.rng).to(obs.device)

    def _update_score(self, obs: torch.Tensor) -> float:
        """Denoising score matching of ψ on the generator's own (detached) samples."""
        with torch.no_grad():
            fake = self.generator.generate(obs, self._noise(obs))
        loss = self.score.loss(obs, fake, generator=self.rng)
        self.opt_score.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.score.parameters(), self.cfg.grad_clip)
        self.opt_score.step()
        return float(loss.detach())

    def _kl_grad(self, obs: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample KL gradient on A_θ (module docstring) and the teacher gap |A_θ - x̂_0|."""
        lo, hi = self.t_range
        t = torch.randint(lo, hi + 1, (x0.shape[0],), generator=self.rng).to(obs.device)
        eps = torch.randn(x0.shape, generator=self.rng).to(obs.device)
        x_t = self.teacher.q_sample(x0, t, eps)
        x0_teacher = self.teacher.predict_x0_eps(x_t, t, obs)[0]
        if self.score is not None:
            x0_gen = self.score.predict_x0_eps(x_t, t, obs)[0]
        else:
            x0_gen = x0  # Dirac generator: its score is -ε/σ_k, so x̂_0^gen = A_θ exactly
        gap = (x0 - x0_teacher).abs().mean(dim=(1, 2), keepdim=True)
        if self.cfg.weighting == "sigma2":
            ab = self.teacher.alphas_cumprod[t].view(-1, 1, 1)
            return ab * (x0_gen - x0_teacher), gap
        x0_teacher, x0_gen = x0_teacher.clamp(-1.0, 1.0), x0_gen.clamp(-1.0, 1.0)
        dmd_gap = (x0 - x0_teacher).abs().mean(dim=(1, 2), keepdim=True)
        return (x0_gen - x0_teacher) / dmd_gap.clamp_min(1e-4), gap

    def update(self, obs_batch: torch.Tensor) -> dict[str, float]:
        """One OneDP step on a batch of normalised observations (B, obs_dim · obs_history).

        Returns:
            ``loss_generator`` (surrogate ½|grad|², per sample), ``teacher_gap``
            (mean |A_θ - x̂_0^teacher|) and, for OneDP-S, ``loss_score`` (ψ's DSM loss).
        """
        self.teacher.check_obs(obs_batch)
        logs: dict[str, float] = {}
        if self.score is not None:
            for _ in range(self.cfg.score_updates):
                logs["loss_score"] = self._update_score(obs_batch)
        noise = self._noise(obs_batch)
        x0 = self.generator.generate(obs_batch, noise)
        with torch.no_grad():
            grad, gap = self._kl_grad(obs_batch, x0.detach())
        target = (x0 - grad).detach()
        # d/dA_θ of this is grad / B: the KL gradient, averaged over the batch.
        loss = 0.5 * ((x0 - target) ** 2).sum() / x0.shape[0]
        if self.cfg.anchor_weight > 0 and self.score is not None:
            ref = self.teacher.ddim_from(self.generator.latent(noise), self.k_star,
                                         self.cfg.anchor_steps, obs_batch)
            anchor = 0.5 * ((x0 - ref) ** 2).sum() / x0.shape[0]
            loss = loss + self.cfg.anchor_weight * anchor
            logs["loss_anchor"] = float(anchor.detach())
        self.opt_gen.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.grad_clip)
        self.opt_gen.step()
        if self.ema is not None:
            update_average(self.ema, self.generator, self.cfg.ema_decay)
        self.num_updates += 1
        logs["loss_generator"] = float(loss.detach())
        logs["teacher_gap"] = float(gap.mean())
        return logs

    def get_policy(self) -> OneStepGenerator:
        """The one-step generator (call ``forward(obs, noise)`` or ``as_onnx(path)``).

        G_θ's moving average when ``ema_decay`` > 0, else G_θ itself.
        """
        return self.ema if self.ema is not None else self.generator

    def save(self, path: str) -> None:
        """Write generator, ψ, optimisers and RNG to ``path`` atomically (temp, rename)."""
        state = {
            "cfg": asdict(self.cfg),
            "generator": self.generator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_generator": self.opt_gen.state_dict(),
            "score": self.score.state_dict() if self.score is not None else None,
            "opt_score": self.opt_score.state_dict() if self.opt_score is not None else None,
            "rng": self.rng.get_state(),
            "num_updates": self.num_updates,
        }
        atomic_torch_save(path, state)

    def load(self, path: str) -> None:
        """Restore a checkpoint written by :meth:`save` with the same variant."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no OneDP checkpoint at {path}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["cfg"]["variant"] != self.cfg.variant:
            raise ValueError(f"checkpoint variant is {state['cfg']['variant']!r}, "
                             f"this distiller is {self.cfg.variant!r}")
        self.generator.load_state_dict(state["generator"])
        if self.ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"checkpoint {path} has no generator average: it was "
                                 "written with ema_decay 0; resume with the same settings")
            self.ema.load_state_dict(state["ema"])
        self.opt_gen.load_state_dict(state["opt_generator"])
        if self.score is not None:
            self.score.load_state_dict(state["score"])
            self.opt_score.load_state_dict(state["opt_score"])
        self.rng.set_state(state["rng"])
        self.num_updates = state["num_updates"]

"""Settings of the `onestep` section (OneDP), declared once.

The diffusion teacher's settings belong to `teachers.diffusion.DiffusionConfig` and the
distiller's to `distiller.OneStepConfig`: this section takes its defaults from them and
validates by building them, so each range and choice is written in one place. Only what
the pipeline adds (data sources, update counts, batch sizes, checkpoints) is declared here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from distill_ros.checks import asdict_without_defaults, choice, positive
from distill_ros.distill.onestep.distiller import VARIANTS, OneStepConfig
from distill_ros.teachers.diffusion import DiffusionConfig

#: section key -> DiffusionConfig field, for the teacher's settings
TEACHER_KEYS = {"horizon": "horizon", "n_exec": "n_exec", "obs_history": "obs_history",
                "hidden_dim": "hidden_dim", "n_blocks": "n_blocks",
                "diffusion_steps": "num_train_steps", "schedule": "schedule",
                "prediction": "prediction", "ddim_steps": "ddim_steps"}
#: section key -> OneStepConfig field, for the distiller's settings
DISTILLER_KEYS = {"lr_generator": "lr_generator", "lr_score": "lr_score",
                  "score_updates": "score_updates", "weighting": "weighting",
                  "t_min_frac": "t_min_frac", "t_max_frac": "t_max_frac",
                  "generator_ema": "ema_decay", "gen_timestep": "gen_timestep",
                  "latent_side": "latent_side", "latent_scale": "latent_scale",
                  "anchor_weight": "anchor_weight"}
#: keys added after runs existed: recorded in run.json only when not at their defaults
LATE_KEYS = ("score_updates", "t_min_frac", "t_max_frac", "gen_timestep", "latent_side",
             "latent_scale", "anchor_weight", "dataset", "generator_ema", "stochastic_ema",
             "distill_starts")


def _default(cls: type, name: str) -> object:
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _diffusion(name: str) -> object:
    return _default(DiffusionConfig, name)


def _distiller(name: str) -> object:
    return _default(OneStepConfig, name)


@dataclass
class OneStepPipelineConfig:
    """Diffusion-policy teacher, OneDP generators and the BC baseline (distill.algorithm onestep).

    `demonstrators` lists who produces the data for every task: built-in scripted experts
    by name (see `distill_ros.teachers.scripted_styles`) or teacher files, where `{task}`
    in a path becomes the task name; empty means the pipeline's own teachers. Episodes of a
    task alternate between the demonstrators, so several of them make the data multimodal.
    `dataset` instead names the user's own demonstrations, one `.npz` of episodes per task
    (`{task}` in the path becomes the task name; fields in `distill.dataset.read_episodes`).
    """

    demonstrators: list[str] = field(default_factory=list)
    dataset: str = ""
    horizon: int = _diffusion("horizon")
    n_exec: int = _diffusion("n_exec")
    obs_history: int = 2           # the pipeline conditions on two frames by default
    hidden_dim: int = _diffusion("hidden_dim")
    n_blocks: int = _diffusion("n_blocks")
    diffusion_steps: int = _diffusion("num_train_steps")
    schedule: str = _diffusion("schedule")
    prediction: str = _diffusion("prediction")
    ddim_steps: int = _diffusion("ddim_steps")
    teacher_updates: int = 4000
    teacher_batch_size: int = 256
    teacher_lr: float = 1e-3
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    deploy: str = "stochastic"     # variant exported as export/policy.onnx
    distill_updates: int = 200     # OneDP generator updates per variant
    consistency: bool = False      # also distil the consistency baseline (same budget)
    distill_batch_size: int = 128
    lr_generator: float = _distiller("lr_generator")
    lr_score: float = _distiller("lr_score")
    score_updates: int = _distiller("score_updates")  # OneDP-S: ψ steps per generator step
    weighting: str = _distiller("weighting")
    t_min_frac: float = _distiller("t_min_frac")     # KL diffusion steps, fractions of T
    t_max_frac: float = _distiller("t_max_frac")
    generator_ema: float = _distiller("ema_decay")   # OneDP generators' weight average
    stochastic_ema: float | None = None  # OneDP-S's own average; None: generator_ema
    gen_timestep: int | None = _distiller("gen_timestep")  # OneDP-S's k*; None: the default
    latent_side: float = _distiller("latent_side")   # OneDP-S: the side bit's input shift
    latent_scale: float = _distiller("latent_scale")  # OneDP-S: factor on z in G_θ's input
    anchor_weight: float = _distiller("anchor_weight")  # OneDP-S: teacher-sample anchor
    distill_starts: int = 0        # extra reset states per task the generators train on
    checkpoint_every: int = 500    # updates between checkpoints (teacher and generators)
    curve_every: int = 0           # updates between convergence-curve snapshots; 0: none
    latency_repeats: int = 30      # timed batch-1 calls per policy in the report

    def __post_init__(self) -> None:
        positive("onestep", teacher_updates=self.teacher_updates,
                 teacher_batch_size=self.teacher_batch_size, teacher_lr=self.teacher_lr,
                 distill_updates=self.distill_updates,
                 distill_batch_size=self.distill_batch_size,
                 checkpoint_every=self.checkpoint_every, latency_repeats=self.latency_repeats)
        if not isinstance(self.curve_every, int) or self.curve_every < 0:
            raise ValueError(f"onestep.curve_every must be an integer >= 0 (0: no convergence "
                             f"curves), got {self.curve_every!r}")
        self.diffusion_config(obs_dim=1, act_dim=1, seed=0)
        if not isinstance(self.distill_starts, int) or self.distill_starts < 0:
            raise ValueError(f"onestep.distill_starts must be an integer >= 0 (reset states "
                             f"per task added to the generators' observations; 0: the data's "
                             f"windows only), got {self.distill_starts!r}")
        if self.stochastic_ema is not None and not 0.0 <= self.stochastic_ema < 1.0:
            raise ValueError(f"onestep.stochastic_ema must be in [0, 1) (0: no average; "
                             f"leave it out to use generator_ema), got {self.stochastic_ema!r}")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ValueError(f"onestep.variants must list distinct variants from "
                             f"{list(VARIANTS)}, got {self.variants}")
        for i, variant in enumerate(self.variants):
            self.distiller_config(variant, seed=0, key=f"onestep.variants[{i}]")
        choice("onestep.deploy", self.deploy, self.variants)
        if self.dataset and self.demonstrators:
            raise ValueError("onestep.dataset and onestep.demonstrators both set: the data "
                             "comes from one of them; remove the other")

    def diffusion_config(self, obs_dim: int, act_dim: int, seed: int) -> DiffusionConfig:
        """The DDPM teacher's settings; its errors name this section's keys."""
        kwargs = {f: getattr(self, k) for k, f in TEACHER_KEYS.items()}
        with _renamed({f: f"onestep.{k}" for k, f in TEACHER_KEYS.items()}):
            return DiffusionConfig(obs_dim=obs_dim, act_dim=act_dim, seed=seed, **kwargs)

    def distiller_config(self, variant: str, seed: int, key: str = "variant") -> OneStepConfig:
        """The OneDP distiller's settings for `variant`; its errors name this section's keys.

        `gen_timestep`, `stochastic_ema` and the latent and anchor keys are OneDP-S's:
        OneDP-D keeps its default k* and `generator_ema` (the latent and anchor settings do
        nothing there).
        """
        kwargs = {f: getattr(self, k) for k, f in DISTILLER_KEYS.items()}
        if variant != "stochastic":
            kwargs["gen_timestep"] = None
        elif self.stochastic_ema is not None:
            kwargs["ema_decay"] = self.stochastic_ema
        with _renamed({**{f: f"onestep.{k}" for k, f in DISTILLER_KEYS.items()},
                       "variant": key}):
            return OneStepConfig(variant=variant, seed=seed, **kwargs)

    def ledger_dict(self) -> dict:
        """The section as run.json records it; the `LATE_KEYS` only when not at their defaults."""
        return asdict_without_defaults(self, LATE_KEYS)


class _renamed:
    """Rewrite a component's field names into this section's dotted keys in its errors."""

    def __init__(self, names: dict[str, str]) -> None:
        self.pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
        self.names = names

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, tb) -> bool:
        if isinstance(err, ValueError):
            text = self.pattern.sub(lambda m: self.names[m.group(1)], str(err))
            raise ValueError(text) from None
        return False

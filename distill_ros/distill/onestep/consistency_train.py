"""The consistency-distillation baseline inside the onestep pipeline (`onestep.consistency`).

Same teacher, same data windows, same update count and batch stream as the OneDP
generators (`train.run_distiller`), so the report compares them at equal budget. CD needs
data chunks (it noises them and takes one teacher ODE step); OneDP needs observations only.
"""

from __future__ import annotations

import numpy as np
import torch

from distill_ros.config import PipelineConfig
from distill_ros.distill.onestep.chunk_policy import ChunkScaler, GeneratorPolicy
from distill_ros.distill.onestep.consistency import ConsistencyConfig, ConsistencyDistiller
from distill_ros.rundir import RunDir
from distill_ros.teachers.diffusion import DiffusionPolicy

NAME = "consistency"   # student/<NAME>/, export/onestep_<NAME>.onnx


def consistency_config(cfg: PipelineConfig) -> ConsistencyConfig:
    """CD settings: the generator's learning rate and the run's seed, else the defaults."""
    return ConsistencyConfig(lr=cfg.onestep.lr_generator, seed=cfg.seed)


def distill_consistency(run: RunDir, cfg: PipelineConfig, teacher: DiffusionPolicy,
                        obs_norm: torch.Tensor, chunks: torch.Tensor) -> dict:
    """`onestep.distill_updates` CD steps on (normalised obs, chunks in [-1, 1]), resumable."""
    from distill_ros.distill.onestep.train import run_distiller

    distiller = ConsistencyDistiller(teacher, consistency_config(cfg))
    return run_distiller(run, cfg, distiller, NAME, "CD",
                         lambda idx: distiller.update(obs_norm[idx], chunks[idx]),
                         len(obs_norm))


def load_consistency(run: RunDir, cfg: PipelineConfig, teacher: DiffusionPolicy,
                     scaler: ChunkScaler) -> GeneratorPolicy:
    """The distilled consistency model, as a one-step policy in physical units."""
    path = run.root / "student" / NAME / "latest.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `distill-ros distill CONFIG` "
                                "with onestep.consistency: true first")
    distiller = ConsistencyDistiller(teacher, consistency_config(cfg))
    distiller.load(str(path))
    return GeneratorPolicy(distiller.get_policy(), scaler).eval()


class TwoStepPlanner:
    """`ChunkPlanner` for two-step consistency sampling in torch (two noises per plan)."""

    def __init__(self, policy: GeneratorPolicy, cfg: PipelineConfig) -> None:
        self.policy = policy
        self.k_mid = ConsistencyDistiller.mid_step(policy.generator, consistency_config(cfg))

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Physical chunk (B, H, A) for a raw history (B, h*obs_dim)."""
        gen = self.policy.generator
        shape = (len(obs), gen.horizon, gen.act_dim)
        z1, z2 = (torch.as_tensor(rng.standard_normal(shape), dtype=torch.float32)
                  for _ in range(2))
        x = self.policy.scaler.norm_obs(torch.as_tensor(obs, dtype=torch.float32))
        return self.policy.scaler.unscale_actions(gen.two_step(x, z1, z2, self.k_mid)).numpy()

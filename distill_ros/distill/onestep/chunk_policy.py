"""Physical-unit wrappers around the diffusion teacher and the OneDP generator.

The diffusion modules work on normalised tensors (standardised observations, actions in
[-1, 1]). `ChunkScaler` holds that normalisation as saved buffers; `GeneratorPolicy` is
the deployable graph (raw observation history + noise -> physical, clamped chunk), and
`DiffusionPlanner` samples the teacher through the same scaler for evaluation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from distill_ros.distill.onestep.distiller import OneStepGenerator
from distill_ros.spec import Spec
from distill_ros.students.base import trace_to_onnx
from distill_ros.teachers.diffusion import DiffusionPolicy


class ChunkScaler(nn.Module):
    """Observation standardisation (per frame, tiled over the history) and action scaling."""

    def __init__(self, obs_spec: Spec, act_spec: Spec, obs_history: int) -> None:
        super().__init__()
        if not act_spec.low or not act_spec.high:
            raise ValueError("the action spec needs low/high limits to scale action chunks")
        self.obs_spec, self.act_spec, self.obs_history = obs_spec, act_spec, obs_history
        self.register_buffer("obs_mean", torch.zeros(obs_spec.dim * obs_history))
        self.register_buffer("obs_std", torch.ones(obs_spec.dim * obs_history))
        self.register_buffer("act_low", torch.tensor(act_spec.low, dtype=torch.float32))
        self.register_buffer("act_high", torch.tensor(act_spec.high, dtype=torch.float32))

    def fit(self, frames: np.ndarray) -> None:
        """Fit to per-frame observations (N, obs_dim); constant features keep std 1."""
        std = frames.std(0)
        std = np.where(std < 1e-6, 1.0, std)
        self.obs_mean.copy_(torch.as_tensor(np.tile(frames.mean(0), self.obs_history)))
        self.obs_std.copy_(torch.as_tensor(np.tile(std, self.obs_history)))

    def norm_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw history (B, obs_history * obs_dim) -> standardised."""
        return (obs - self.obs_mean) / self.obs_std

    def scale_actions(self, act: torch.Tensor) -> torch.Tensor:
        """Physical actions (..., act_dim) -> [-1, 1]."""
        return 2.0 * (act - self.act_low) / (self.act_high - self.act_low) - 1.0

    def unscale_actions(self, a: torch.Tensor) -> torch.Tensor:
        """[-1, 1] actions -> physical, clamped to the spec's limits."""
        act = self.act_low + (a + 1.0) * 0.5 * (self.act_high - self.act_low)
        return torch.maximum(torch.minimum(act, self.act_high), self.act_low)


class GeneratorPolicy(nn.Module):
    """The exported graph: raw obs history (B, h*obs_dim), noise (B, H, A) -> chunk (B, H, A).

    `obs_spec`/`act_spec` describe ONE frame and one action, so `export_student` can write
    the metadata; the graph's input holds `obs_history` frames, oldest first.
    """

    def __init__(self, generator: OneStepGenerator, scaler: ChunkScaler) -> None:
        super().__init__()
        self.generator, self.scaler = generator, scaler
        self.obs_spec, self.act_spec = scaler.obs_spec, scaler.act_spec

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Normalise, one generator call, unscale and clamp."""
        return self.scaler.unscale_actions(self.generator(self.scaler.norm_obs(obs), noise))

    @torch.no_grad()
    def plan(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`ChunkPlanner` in torch: noise from `rng`."""
        noise = rng.standard_normal((len(obs), self.generator.horizon, self.generator.act_dim))
        return self(torch.as_tensor(obs, dtype=torch.float32),
                    torch.as_tensor(noise, dtype=torch.float32)).numpy()

    def as_onnx(self, path: str, opset: int = 17) -> None:
        """Export with inputs `obs`, `noise`, output `actions`, dynamic batch axis."""
        gen = self.generator
        example = (torch.zeros(1, gen.cond_dim), torch.zeros(1, gen.horizon, gen.act_dim))
        trace_to_onnx(self, example, ["obs", "noise"], path, opset)


class DiffusionPlanner:
    """`ChunkPlanner` sampling the diffusion teacher (DDPM over all T steps, or DDIM)."""

    def __init__(self, teacher: DiffusionPolicy, scaler: ChunkScaler, sampler: str,
                 steps: int | None = None) -> None:
        self.teacher, self.scaler = teacher.eval(), scaler
        self.sampler, self.steps = sampler, steps

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Physical chunk (B, H, A) for a raw history (B, h*obs_dim)."""
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        x = self.scaler.norm_obs(torch.as_tensor(obs, dtype=torch.float32))
        a = self.teacher.sample(x, self.steps, self.sampler, generator=gen)
        return self.scaler.unscale_actions(a).numpy()

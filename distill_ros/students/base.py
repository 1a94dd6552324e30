"""The deployable student: observation normaliser, core network, action unscaling and clamp.

Export lives on the model (rsl_rl's `as_onnx`): the graph holds normalisation, the
deterministic head, unscaling and clipping, so the runtime never re-implements them.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from distill_ros.spec import Spec


class StudentPolicy(nn.Module):
    """Raw observation (physical units) -> action (physical units), all in one module.

    Training works in the normalised action space [-1, 1] through `forward_normalized`;
    `forward` adds unscaling and the clamp to the spec's limits.
    """

    def __init__(self, core: nn.Module, obs_spec: Spec, act_spec: Spec) -> None:
        super().__init__()
        if not act_spec.low or not act_spec.high:
            raise ValueError("the action spec needs low/high limits to unscale student outputs")
        self.core = core
        self.obs_spec = obs_spec
        self.act_spec = act_spec
        low = torch.tensor(act_spec.low, dtype=torch.float32)
        high = torch.tensor(act_spec.high, dtype=torch.float32)
        self.register_buffer("obs_mean", torch.zeros(obs_spec.dim))
        self.register_buffer("obs_std", torch.ones(obs_spec.dim))
        self.register_buffer("act_low", low)
        self.register_buffer("act_high", high)

    def set_normalizer(self, obs: np.ndarray) -> None:
        """Fit the observation normaliser to data (saved state, not a hidden global)."""
        self.obs_mean.copy_(torch.as_tensor(obs.mean(0), dtype=torch.float32))
        # constant features (e.g. a contact flag never set) get std 1, not a divide by zero
        std = obs.std(0)
        self.obs_std.copy_(torch.as_tensor(np.where(std < 1e-6, 1.0, std), dtype=torch.float32))

    def normalize_actions(self, act: torch.Tensor) -> torch.Tensor:
        """Physical action -> [-1, 1] (the training target space)."""
        return 2.0 * (act - self.act_low) / (self.act_high - self.act_low) - 1.0

    def forward_normalized(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observation -> action in [-1, 1] space (unclamped, for the loss)."""
        return self.core((obs - self.obs_mean) / self.obs_std)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observation -> physical action within the spec's limits."""
        a = self.forward_normalized(obs)
        act = self.act_low + (a + 1.0) * 0.5 * (self.act_high - self.act_low)
        return torch.maximum(torch.minimum(act, self.act_high), self.act_low)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Numpy convenience for rollouts: (B, obs_dim) -> (B, act_dim)."""
        return self(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def as_onnx(self, path: str, opset: int = 17) -> None:
        """Export the whole deployable graph with a dynamic batch axis."""
        trace_to_onnx(self, (torch.zeros(1, self.obs_spec.dim),), ["obs"], path, opset)


def trace_to_onnx(module: nn.Module, example: tuple, input_names: list[str], path: str,
                  opset: int = 17) -> None:
    """Trace `module` in eval mode to an ONNX file at `path`, output named `actions`.

    Every input and the output get a dynamic batch axis (axis 0); the module's
    train/eval mode is restored afterwards.
    """
    buf = io.BytesIO()
    was_training = module.training
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # tracer warnings about shape-dependent branches
        torch.onnx.export(
            module, example, buf, dynamo=False, opset_version=opset,
            input_names=input_names, output_names=["actions"],
            dynamic_axes={name: {0: "batch"} for name in [*input_names, "actions"]})
    module.train(was_training)
    with open(path, "wb") as f:
        f.write(buf.getvalue())

"""The deployable student: observation normaliser, core network, action unscaling and clamp.

Export lives on the model (rsl_rl's `as_onnx`): the graph holds normalisation, the
deterministic head, unscaling and clipping, so the runtime never re-implements them.

Observations come as named groups (`distill_ros.spec.ObsSpec`): the module's positional
inputs, and the ONNX file's inputs, are the spec's `input_names` in order (a command group
adds ``<name>_mask``). A flat student has the one input ``obs``, as before groups.
"""

from __future__ import annotations

import io
import warnings
from typing import Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from distill_ros.spec import ObsSpec, Spec
from distill_ros.students.encoders import GroupEncoder

#: a flat observation array, or a dict of arrays keyed by input name
Obs = Union[np.ndarray, torch.Tensor, Mapping[str, Union[np.ndarray, torch.Tensor]]]


class StudentPolicy(nn.Module):
    """Raw observation groups (physical units) -> action (physical units), all in one module.

    Training works in the normalised action space [-1, 1] through `forward_normalized`;
    `forward` adds unscaling and the clamp to the spec's limits. Each input but a mask has a
    normaliser ``<input>_mean`` / ``<input>_std`` per channel (per point channel for points,
    per element of a frame for a history), so a flat student's buffers keep their old names.

    `points_origin` names a vector group whose first three values (e.g. the gripper's
    position) are subtracted from every points group's x, y, z inside the graph, before
    the normaliser: the point encoder reads the cloud relative to it, so a shape seen at
    one place in training reads the same at another.
    """

    def __init__(self, core: nn.Module, obs_spec: Union[Spec, ObsSpec], act_spec: Spec,
                 encoder: Optional[GroupEncoder] = None, points_origin: str = "") -> None:
        super().__init__()
        if not act_spec.low or not act_spec.high:
            raise ValueError("the action spec needs low/high limits to unscale student outputs")
        self.obs_spec = ObsSpec.of(obs_spec)
        self.points_origin = points_origin
        self._check_points_origin()
        self.encoder = encoder if encoder is not None else GroupEncoder(self.obs_spec)
        self.core = core
        self.act_spec = act_spec
        self._normalized_inputs = [g.name for g in self.obs_spec.groups]
        for g in self.obs_spec.groups:
            self.register_buffer(f"{g.name}_mean", torch.zeros(g.channels.dim))
            self.register_buffer(f"{g.name}_std", torch.ones(g.channels.dim))
        self.register_buffer("act_low", torch.tensor(act_spec.low, dtype=torch.float32))
        self.register_buffer("act_high", torch.tensor(act_spec.high, dtype=torch.float32))

    def _check_points_origin(self) -> None:
        if not self.points_origin:
            return
        groups = {g.name: g for g in self.obs_spec.groups}
        origin = groups.get(self.points_origin)
        if origin is None or origin.kind != "vector" or origin.size < 3:
            raise ValueError(
                f"student.points_origin {self.points_origin!r} must name a vector group of at "
                f"least 3 values (its first three are the origin, e.g. a gripper position); "
                f"the student's groups: {self.obs_spec.describe()}")
        if not any(g.kind == "points" and g.channels.dim >= 3 for g in groups.values()):
            raise ValueError(f"student.points_origin {self.points_origin!r} is set but the "
                             f"student reads no points group with x, y, z: "
                             f"{self.obs_spec.describe()}; leave points_origin empty")

    def _relative(self, named: dict) -> dict:
        """Each points group's x, y, z minus the origin group's first three values."""
        if not self.points_origin:
            return named
        origin = named[self.points_origin][:, None, :3]
        out = dict(named)
        for g in self.obs_spec.groups:
            if g.kind == "points" and g.channels.dim >= 3:
                x = named[g.name]
                cat = torch.cat if isinstance(x, torch.Tensor) else np.concatenate
                out[g.name] = cat([x[..., :3] - origin, x[..., 3:]], -1)
        return out

    def set_normalizer(self, obs: Obs) -> None:
        """Fit the normalisers to data (saved state, not a hidden global).

        Channels are pooled over points and frames; a command's statistics use only the
        commanded entries. Constant channels (e.g. a contact flag never set) get std 1.
        With `points_origin`, a points group's statistics are those of the relative points.
        """
        arrays = self._relative({k: np.asarray(v) for k, v in self.as_arrays(obs).items()})
        for g in self.obs_spec.groups:
            # in the data's own dtype: a flat float32 student fits the same statistics, bit
            # for bit, as before groups existed (so earlier runs reproduce exactly)
            x = np.asarray(arrays[g.name]).reshape(-1, g.channels.dim)
            if g.kind == "command":
                x = x.astype(np.float64)
                m = np.asarray(arrays[f"{g.name}_mask"], np.float64).reshape(x.shape) > 0.5
                n = np.maximum(m.sum(0), 1)
                mean = np.where(m, x, 0.0).sum(0) / n
                std = np.sqrt(np.where(m, (x - mean) ** 2, 0.0).sum(0) / n)
            else:
                mean, std = x.mean(0), x.std(0)
            getattr(self, f"{g.name}_mean").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"{g.name}_std").copy_(
                torch.as_tensor(np.where(std < 1e-6, 1.0, std), dtype=torch.float32))

    def as_arrays(self, obs: Obs) -> dict:
        """`obs` as a dict by input name (a plain array is the one group of a flat student)."""
        if isinstance(obs, Mapping):
            self.obs_spec.check_arrays(obs, "student input")
            return dict(obs)
        if not self.obs_spec.is_flat:
            raise ValueError(f"this student takes observation groups "
                             f"{list(self.obs_spec.input_names)}: pass a dict of arrays")
        return {self.obs_spec.input_names[0]: obs}

    def _inputs(self, obs: Obs) -> list[torch.Tensor]:
        arrays = self.as_arrays(obs)
        return [torch.as_tensor(arrays[n], dtype=torch.float32) for n in self.obs_spec.input_names]

    def _normalize(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        named = self._relative(dict(zip(self.obs_spec.input_names, inputs)))
        return [(x - getattr(self, f"{n}_mean")) / getattr(self, f"{n}_std")
                if n in self._normalized_inputs else x for n, x in named.items()]

    def _core(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.core(self.encoder(self._normalize(inputs)))

    def normalize_actions(self, act: torch.Tensor) -> torch.Tensor:
        """Physical action -> [-1, 1] (the training target space)."""
        return 2.0 * (act - self.act_low) / (self.act_high - self.act_low) - 1.0

    def forward_normalized(self, obs: Obs) -> torch.Tensor:
        """Raw observation (array or dict of groups) -> action in [-1, 1] space, unclamped."""
        return self._core(self._inputs(obs))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Raw inputs, positional in `obs_spec.input_names` order -> physical action."""
        a = self._core(list(inputs))
        act = self.act_low + (a + 1.0) * 0.5 * (self.act_high - self.act_low)
        return torch.maximum(torch.minimum(act, self.act_high), self.act_low)

    @torch.no_grad()
    def act(self, obs: Obs) -> np.ndarray:
        """Numpy convenience for rollouts: (B, ...) groups or (B, obs_dim) -> (B, act_dim)."""
        return self(*self._inputs(obs)).numpy()

    def as_onnx(self, path: str, opset: int = 17) -> None:
        """Export the whole deployable graph: one input per group, dynamic batch axis."""
        example = tuple(torch.zeros(1, *s) for s in self.obs_spec.input_shapes().values())
        trace_to_onnx(self, example, list(self.obs_spec.input_names), path, opset)


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

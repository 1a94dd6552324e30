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
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from distill_ros.spec import ObsSpec, Spec
from distill_ros.students.config import check_one_frame
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

    `points_frame` names a pose group instead (x, y, z, then a quaternion x, y, z, w, e.g.
    the gripper's pose): the cloud is read in that frame (translated and rotated), and the
    action's `frame_vectors` (index triples, e.g. a twist's linear and angular parts) come
    out of the core in that frame and are turned back into the world in the graph, so a
    scene seen at one orientation in training reads, and is acted on, the same at another.
    """

    def __init__(self, core: nn.Module, obs_spec: Union[Spec, ObsSpec], act_spec: Spec,
                 encoder: Optional[GroupEncoder] = None, points_origin: str = "",
                 points_frame: str = "",
                 frame_vectors: Optional[Sequence[Sequence[int]]] = None) -> None:
        super().__init__()
        if not act_spec.low or not act_spec.high:
            raise ValueError("the action spec needs low/high limits to unscale student outputs")
        self.obs_spec = ObsSpec.of(obs_spec)
        check_one_frame(points_origin, points_frame)
        self.points_origin, self.points_frame = points_origin, points_frame
        self._check_pose_group("points_origin", points_origin, 3, "a gripper position")
        self._check_pose_group("points_frame", points_frame, 7,
                               "x, y, z and a quaternion x, y, z, w: a gripper pose")
        if points_frame and frame_vectors is None:
            raise ValueError(f"student.points_frame {points_frame!r} needs to know which of the "
                             f"action's values are vectors to turn back into the world "
                             f"({list(act_spec.names)}); the task family declares them "
                             f"(TaskFamily.act_frame_vectors, () when none are)")
        self.frame_vectors = (_check_frame_vectors(frame_vectors or (), act_spec)
                              if points_frame else ())
        self.encoder = encoder if encoder is not None else GroupEncoder(self.obs_spec)
        self.core = core
        self.act_spec = act_spec
        self._normalized_inputs = [g.name for g in self.obs_spec.groups]
        for g in self.obs_spec.groups:
            self.register_buffer(f"{g.name}_mean", torch.zeros(g.channels.dim))
            self.register_buffer(f"{g.name}_std", torch.ones(g.channels.dim))
        self.register_buffer("act_low", torch.tensor(act_spec.low, dtype=torch.float32))
        self.register_buffer("act_high", torch.tensor(act_spec.high, dtype=torch.float32))

    def _check_pose_group(self, key: str, name: str, size: int, what: str) -> None:
        if not name:
            return
        groups = {g.name: g for g in self.obs_spec.groups}
        group = groups.get(name)
        if group is None or group.kind != "vector" or group.size < size:
            raise ValueError(
                f"student.{key} {name!r} must name a vector group of at least {size} "
                f"values (its first {size} are {what}); the student's groups: "
                f"{self.obs_spec.describe()}")
        if not any(g.kind == "points" and g.channels.dim >= 3 for g in groups.values()):
            raise ValueError(f"student.{key} {name!r} is set but the student reads no "
                             f"points group with x, y, z: {self.obs_spec.describe()}; leave "
                             f"{key} empty")

    def _frame(self, named: dict) -> torch.Tensor | None:
        """The `points_frame` pose's rotation (B, 3, 3), or None without a frame."""
        return _rotation(named[self.points_frame][:, 3:7]) if self.points_frame else None

    def _relative(self, named: dict, rotation: torch.Tensor | None = None) -> dict:
        """Each points group's x, y, z from `points_origin`, or in `points_frame` (tensors).

        `rotation`: the frame's, if the caller has it already (`_frame`).
        """
        pose = self.points_origin or self.points_frame
        if not pose:
            return named
        origin = named[pose][:, None, :3]
        if rotation is None:
            rotation = self._frame(named)
        out = dict(named)
        for g in self.obs_spec.groups:
            if g.kind == "points" and g.channels.dim >= 3:
                x = named[g.name]
                xyz = x[..., :3] - origin
                if rotation is not None:
                    xyz = xyz @ rotation   # row-wise R^T p: the frame's coordinates
                out[g.name] = torch.cat([xyz, x[..., 3:]], -1)
        return out

    def _to_world(self, action: torch.Tensor, rotation: torch.Tensor | None) -> torch.Tensor:
        """The core's action with its `frame_vectors` turned by the frame's `rotation`."""
        if not self.frame_vectors:
            return action
        columns = list(action.unbind(-1))
        for triple in self.frame_vectors:
            v = rotation @ torch.stack([columns[i] for i in triple], -1).unsqueeze(-1)
            for i, value in zip(triple, v.squeeze(-1).unbind(-1)):
                columns[i] = value
        return torch.stack(columns, -1)

    def set_normalizer(self, obs: Obs) -> None:
        """Fit the normalisers to data (saved state, not a hidden global).

        Channels are pooled over points and frames; a command's statistics use only the
        commanded entries. Constant channels (e.g. a contact flag never set) get std 1.
        With `points_origin` or `points_frame`, a points group's statistics are those of the
        points as the encoder reads them.
        """
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in self.as_arrays(obs).items()}
        arrays = {k: v.numpy() for k, v in self._relative(tensors).items()}
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

    def _normalize(self, inputs: list[torch.Tensor],
                   rotation: torch.Tensor | None = None) -> list[torch.Tensor]:
        named = self._relative(dict(zip(self.obs_spec.input_names, inputs)), rotation)
        return [(x - getattr(self, f"{n}_mean")) / getattr(self, f"{n}_std")
                if n in self._normalized_inputs else x for n, x in named.items()]

    def _core(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        # the frame's rotation once per call: it turns the points in and the action out
        rotation = self._frame(dict(zip(self.obs_spec.input_names, inputs)))
        return self._to_world(self.core(self.encoder(self._normalize(inputs, rotation))),
                              rotation)

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


def _rotation(q: torch.Tensor) -> torch.Tensor:
    """(B, 4) quaternions x, y, z, w -> (B, 3, 3) rotations (columns: the frame's axes)."""
    q = q / q.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    x, y, z, w = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        -1).reshape(*q.shape[:-1], 3, 3)


def _check_frame_vectors(triples: Sequence[Sequence[int]], act_spec: Spec
                         ) -> tuple[tuple[int, ...], ...]:
    """The action's 3-vectors, checked: turning one must commute with the [-1, 1] scaling."""
    out = tuple(tuple(int(i) for i in t) for t in triples)
    flat = [i for t in out for i in t]
    if any(len(t) != 3 for t in out) or len(set(flat)) != len(flat) or \
            any(not 0 <= i < act_spec.dim for i in flat):
        raise ValueError(f"frame vectors must be disjoint triples of action indices in "
                         f"[0, {act_spec.dim}), got {[list(t) for t in out]}")
    for t in out:
        low, high = [act_spec.low[i] for i in t], [act_spec.high[i] for i in t]
        if any(abs(lo + hi) > 1e-9 for lo, hi in zip(low, high)) or \
                max(high) - min(high) > 1e-9:
            raise ValueError(
                f"student.points_frame turns the action's {[act_spec.names[i] for i in t]}, "
                f"so their limits must be one symmetric bound (-a, a), got low {low}, high "
                f"{high}; leave points_frame empty for this action")
    return out


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

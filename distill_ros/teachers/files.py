"""Teachers from the user's own files: ONNX or TorchScript, physical units in and out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill_ros.spec import Spec
from distill_ros.teachers.base import check_obs_dim


class OnnxTeacher:
    """An ONNX policy with one input (B, obs_dim) and one output (B, act_dim)."""

    def __init__(self, path: Path, obs_spec: Spec, act_spec: Spec) -> None:
        from distill_ros.runtime.session import open_session

        self.session = open_session(path)
        inp = self.session.get_inputs()[0]
        dim = inp.shape[-1] if isinstance(inp.shape[-1], int) else None
        check_obs_dim(path, dim, obs_spec)
        self.input_name = inp.name
        self.act_dim = act_spec.dim
        self.path = path

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, obs_dim) -> (B, act_dim)."""
        out = self.session.run(None, {self.input_name: obs.astype(np.float32)})[0]
        if out.shape[-1] != self.act_dim:
            raise ValueError(f"teacher file {self.path} returns {out.shape[-1]} action "
                             f"elements, the task needs {self.act_dim}")
        return out


class TorchScriptTeacher:
    """A TorchScript module mapping (B, obs_dim) to (B, act_dim)."""

    def __init__(self, path: Path, obs_spec: Spec, act_spec: Spec) -> None:
        import torch

        try:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as err:
            raise ValueError(f"teacher file {path} is not a readable TorchScript module "
                             f"({str(err).splitlines()[0]}); re-save it with "
                             "torch.jit.save") from None
        self.path = path
        self.act_dim = act_spec.dim
        try:
            self.act(np.zeros((1, obs_spec.dim), np.float32))
        except RuntimeError as err:
            raise ValueError(
                f"teacher file {path} does not accept observations of {obs_spec.dim} elements "
                f"({', '.join(obs_spec.names)}): {str(err).splitlines()[0]}") from None

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, obs_dim) -> (B, act_dim)."""
        import torch

        with torch.no_grad():
            out = self.module(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        if out.shape[-1] != self.act_dim:
            raise ValueError(f"teacher file {self.path} returns {out.shape[-1]} action "
                             f"elements, the task needs {self.act_dim}")
        return out

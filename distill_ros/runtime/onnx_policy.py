"""The deployable policy: one ONNX file whose metadata says everything needed to run it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from distill_ros.runtime.session import open_session
from distill_ros.spec import Spec

REQUIRED_METADATA = ("obs_spec", "act_spec", "control_rate_hz", "task_family")


class OnnxPolicy:
    """Physical observation -> physical action, with normalisation and limits in the graph."""

    def __init__(self, path: str | Path, want_gpu: bool = True) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, want_gpu)
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise ValueError(f"ONNX file {self.path} lacks metadata {missing}; it was not made "
                             "by `distill-ros export`: export it with distill_ros")
        self.metadata = dict(meta)
        self.obs_spec = Spec.from_json(meta["obs_spec"])
        self.act_spec = Spec.from_json(meta["act_spec"])
        self.control_rate_hz = float(meta["control_rate_hz"])
        self.providers = self.session.get_providers()
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(obs_dim,) or (B, obs_dim) -> (act_dim,) or (B, act_dim)."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.shape[-1] != self.obs_spec.dim:
            raise ValueError(f"observation has {batch.shape[-1]} elements, the policy "
                             f"{self.path.name} needs {self.obs_spec.dim}: "
                             f"{list(self.obs_spec.names)}")
        out = self.session.run(None, {"obs": batch})[0]
        return out[0] if single else out

    def describe(self) -> str:
        """One line for logs."""
        return (f"{self.path.name}: {self.obs_spec.dim} obs -> {self.act_spec.dim} actions at "
                f"{self.control_rate_hz:g} Hz, providers {self.providers}, "
                f"meta {json.dumps({k: self.metadata[k] for k in ('task_family',)})}")

"""Export a one-step generator as an action-chunk ONNX policy and prove parity with torch."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from distill_ros.distill.onestep.chunk_policy import GeneratorPolicy
from distill_ros.export.metadata import Chunking, PolicyMetadata
from distill_ros.export.onnx_export import export_student

log = logging.getLogger(__name__)


def export_generator(policy: GeneratorPolicy, path: Path, n_exec: int, meta: PolicyMetadata,
                     opset: int = 17) -> None:
    """Write `path` atomically with `meta` plus the chunking (chunk_length, n_exec, history)."""
    gen = policy.generator
    chunking = Chunking(gen.horizon, n_exec, policy.scaler.obs_history)
    export_student(policy, path, dataclasses.replace(meta, chunking=chunking), opset)


def generator_parity_check(policy: GeneratorPolicy, path: Path, real_obs: np.ndarray | None,
                           tol: float, n_random: int = 256, seed: int = 0) -> dict[str, float]:
    """Max |ONNX Runtime - torch| on random and real observation histories and random noise."""
    from distill_ros.runtime.session import open_session

    session = open_session(path, want_gpu=False)
    rng = np.random.default_rng(seed)
    mean, std = policy.scaler.obs_mean.numpy(), policy.scaler.obs_std.numpy()
    batches = {"random": mean + 3.0 * std * rng.standard_normal((n_random, len(mean)))}
    if real_obs is not None and len(real_obs):
        batches["real"] = real_obs[rng.permutation(len(real_obs))[:n_random]]
    policy.eval()
    result = {}
    gen = policy.generator
    for name, obs in batches.items():
        obs = obs.astype(np.float32)
        noise = rng.standard_normal((len(obs), gen.horizon, gen.act_dim)).astype(np.float32)
        with torch.no_grad():
            ref = policy(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
        got = session.run(None, {"obs": obs, "noise": noise})[0]
        diff = float(np.max(np.abs(got - ref)))
        result[f"max_abs_diff_{name}"] = diff
        if not diff <= tol:
            raise ValueError(f"ONNX parity failed for {path} on {name} observations: max abs "
                             f"difference {diff:.3g} > export.parity_tol {tol:g}")
    log.info("parity %s: %s", path.name, result)
    return result

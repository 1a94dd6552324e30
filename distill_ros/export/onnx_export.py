"""Export the student to one ONNX file with its metadata, and prove parity with torch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch

from distill_ros import __version__
from distill_ros.atomic import atomic_path
from distill_ros.students.base import StudentPolicy

log = logging.getLogger(__name__)


def export_student(student: StudentPolicy, path: Path, metadata: dict[str, str],
                   opset: int = 17) -> None:
    """Write `path` atomically: the graph from `student.as_onnx`, plus string metadata."""
    with atomic_path(path) as tmp:
        student.as_onnx(str(tmp), opset)
        model = onnx.load(tmp)
        meta = {"obs_spec": student.obs_spec.to_json(), "act_spec": student.act_spec.to_json(),
                "package_version": __version__, **metadata}
        del model.metadata_props[:]
        for key, value in sorted(meta.items()):
            model.metadata_props.add(key=key, value=str(value))
        onnx.checker.check_model(model)
        onnx.save(model, tmp)


def parity_check(student: StudentPolicy, path: Path, real_obs: np.ndarray | None,
                 tol: float, n_random: int = 256, seed: int = 0) -> dict[str, float]:
    """Max |ONNX Runtime - torch| on random and real observations; raises above `tol`."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(path, want_gpu=False)
    rng = np.random.default_rng(seed)
    mean = student.obs_mean.numpy()
    std = student.obs_std.numpy()
    batches = {"random": (mean + 3.0 * std * rng.standard_normal((n_random, len(mean))))
               .astype(np.float32)}
    if real_obs is not None and len(real_obs):
        batches["real"] = real_obs[rng.permutation(len(real_obs))[:n_random]].astype(np.float32)
    student.eval()
    result = {}
    for name, obs in batches.items():
        with torch.no_grad():
            ref = student(torch.from_numpy(obs)).numpy()
        diff = float(np.max(np.abs(policy.act(obs) - ref)))
        result[f"max_abs_diff_{name}"] = diff
        if not diff <= tol:
            raise ValueError(f"ONNX parity failed for {path} on {name} observations: max abs "
                             f"difference {diff:.3g} > export.parity_tol {tol:g}")
    log.info("parity: %s", result)
    return result

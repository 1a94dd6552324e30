"""Export the student to one ONNX file with its metadata, and prove parity with torch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import onnx
import torch

from distill_ros.atomic import atomic_path
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.spec import ObsSpec
from distill_ros.students.base import StudentPolicy

log = logging.getLogger(__name__)

#: real observations for the parity check: a flat array or a dict of arrays by input name
RealObs = Optional[Union[np.ndarray, Mapping[str, np.ndarray]]]


def export_student(student: torch.nn.Module, path: Path, meta: PolicyMetadata,
                   opset: int = 17) -> None:
    """Write `path` atomically: the graph from `student.as_onnx`, plus `meta`'s strings.

    `meta` must describe the module's own layouts (its `obs_spec` and `act_spec`).
    """
    if ObsSpec.of(student.obs_spec) != meta.obs or student.act_spec != meta.act:
        raise ValueError(f"export of {path}: the metadata's layouts ({meta.obs.describe()}) "
                         f"are not the model's ({ObsSpec.of(student.obs_spec).describe()}); "
                         "build the metadata from the model's obs_spec and act_spec")
    with atomic_path(path) as tmp:
        student.as_onnx(str(tmp), opset)
        model = onnx.load(tmp)
        got = [i.name for i in model.graph.input]
        if got != meta.input_names():
            raise ValueError(f"export of {path}: the graph's inputs {got} are not the "
                             f"metadata's {meta.input_names()}")
        meta.write_into(model)
        onnx.checker.check_model(model)
        onnx.save(model, tmp)


def random_inputs(student: StudentPolicy, n: int, rng: np.random.Generator) -> dict:
    """Inputs spread over ±3 std of the normalisers; masks are random 0/1."""
    out = {}
    for g in student.obs_spec.groups:
        mean = getattr(student, f"{g.name}_mean").numpy()
        std = getattr(student, f"{g.name}_std").numpy()
        out[g.name] = (mean + 3.0 * std * rng.standard_normal((n, *g.shape))).astype(np.float32)
        if g.kind == "command":
            out[f"{g.name}_mask"] = rng.integers(0, 2, (n, *g.shape)).astype(np.float32)
    return out


def parity_check(student: StudentPolicy, path: Path, real_obs: RealObs, tol: float,
                 n_random: int = 256, seed: int = 0) -> dict[str, float]:
    """Max |ONNX Runtime - torch| on random and real observations; raises above `tol`."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(path, want_gpu=False)
    rng = np.random.default_rng(seed)
    batches = {"random": random_inputs(student, n_random, rng)}
    if real_obs is not None:
        real = student.as_arrays(real_obs)
        count = len(next(iter(real.values())))
        if count:
            pick = rng.permutation(count)[:n_random]
            batches["real"] = {k: np.asarray(v)[pick].astype(np.float32)
                               for k, v in real.items()}
    student.eval()
    result = {}
    for name, obs in batches.items():
        ref = student.act(obs)
        diff = float(np.max(np.abs(policy.act(obs) - ref)))
        result[f"max_abs_diff_{name}"] = diff
        if not diff <= tol:
            raise ValueError(f"ONNX parity failed for {path} on {name} observations: max abs "
                             f"difference {diff:.3g} > export.parity_tol {tol:g}")
    log.info("parity: %s", result)
    return result

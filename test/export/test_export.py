"""ONNX export: parity with torch, metadata inside the file, bad files refused."""

import numpy as np
import onnx
import pytest
import torch

from distill_ros.config import StudentConfig
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.export.onnx_export import export_student, parity_check
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.students.factory import build_student
from distill_ros.tasks.base import get_family

FAM = get_family("grasp")


def _student(arch):
    torch.manual_seed(0)
    s = build_student(StudentConfig(arch=arch, hidden=[32, 32], d_model=32), FAM.obs_spec,
                      FAM.act_spec)
    s.set_normalizer(np.random.default_rng(0).normal(0.1, 0.05, (500, FAM.obs_spec.dim)))
    return s.eval()


def _meta(student):
    return PolicyMetadata(student.obs_spec, student.act_spec, 30.0, "grasp")


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_onnx_matches_torch_and_carries_metadata(tmp_path, arch):
    student = _student(arch)
    path = tmp_path / "policy.onnx"
    export_student(student, path, _meta(student))
    real = np.random.default_rng(1).normal(0.1, 0.05, (64, FAM.obs_spec.dim)).astype(np.float32)
    diffs = parity_check(student, path, real, tol=1e-4)
    assert diffs["max_abs_diff_random"] < 1e-4 and diffs["max_abs_diff_real"] < 1e-4
    policy = OnnxPolicy(path)
    assert policy.obs_spec == FAM.obs_spec and policy.act_spec == FAM.act_spec
    assert policy.control_rate_hz == 30.0 and policy.metadata.provenance.package_version
    # normalisation, unscaling and clamp are inside the graph: extreme inputs stay in limits
    out = policy.act(np.full((4, FAM.obs_spec.dim), 1e3, np.float32))
    assert np.all(out >= np.array(FAM.act_spec.low) - 1e-6)
    assert np.all(out <= np.array(FAM.act_spec.high) + 1e-6)
    assert policy.act(real[0]).shape == (FAM.act_spec.dim,)


def test_parity_failure_is_reported(tmp_path):
    student = _student("mlp")
    path = tmp_path / "policy.onnx"
    export_student(student, path, _meta(student))
    with torch.no_grad():
        student.core[0].bias += 0.5   # the torch model drifts from the exported file
    with pytest.raises(ValueError, match="ONNX parity failed .* > export.parity_tol"):
        parity_check(student, path, None, tol=1e-4)


def test_truncated_and_foreign_onnx_files_are_refused(tmp_path):
    student = _student("mlp")
    good = tmp_path / "policy.onnx"
    export_student(student, good, _meta(student))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.onnx cannot be loaded.*export it again"):
        OnnxPolicy(cut)
    bare = tmp_path / "bare.onnx"
    model = onnx.load(good)
    del model.metadata_props[:]
    onnx.save(model, bare)
    with pytest.raises(ValueError, match="bare.onnx lacks metadata"):
        OnnxPolicy(bare)
    with pytest.raises(FileNotFoundError, match="missing.onnx does not exist"):
        OnnxPolicy(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="observation has 3 elements"):
        OnnxPolicy(good).act(np.zeros(3))


def test_provider_choice_prefers_gpu_and_falls_back_to_cpu():
    from distill_ros.runtime.session import pick_providers

    assert pick_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == \
        "CUDAExecutionProvider"
    assert pick_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert pick_providers(["CUDAExecutionProvider", "CPUExecutionProvider"],
                          want_gpu=False) == ["CPUExecutionProvider"]

"""Files made by distill_ros before grouped observations still load (test/data/legacy)."""

import numpy as np
import pytest

from conftest import REPO
from distill_ros.config import StudentConfig
from distill_ros.distill.behavior_cloning import Distillation
from distill_ros.distill.dataset import read_shard
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.runtime.chunked import OnnxChunkPlanner
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.spec import ObsSpec
from distill_ros.students.factory import build_student
from distill_ros.tasks.grasp import ACT_SPEC, OBS_SPEC

LEGACY = REPO / "test" / "data" / "legacy"


@pytest.fixture(scope="module")
def ref():
    with np.load(LEGACY / "reference.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("spec", [OBS_SPEC, ObsSpec.flat(OBS_SPEC)])
def test_flat_shard_loads_as_one_group(spec, ref):
    d = read_shard(LEGACY / "shard_000.npz", spec, ACT_SPEC)
    obs = d["obs"] if spec is OBS_SPEC else d["obs"]["obs"]
    assert obs.shape == (20, OBS_SPEC.dim) and d["act"].shape == (20, ACT_SPEC.dim)
    np.testing.assert_array_equal(obs[:4], ref["obs"])


def test_flat_checkpoint_loads_into_the_grouped_student(ref):
    student = build_student(StudentConfig(hidden=[16, 16]), OBS_SPEC, ACT_SPEC)
    Distillation(student, 1e-3).load(LEGACY / "best.pt")
    student.eval()
    np.testing.assert_allclose(student.act(ref["obs"]), ref["act_onnx"], atol=1e-6)
    np.testing.assert_allclose(student.act({"obs": ref["obs"]}), ref["act_onnx"], atol=1e-6)


def test_version_less_onnx_loads_as_version_1_and_acts_on_a_plain_array(ref):
    policy = OnnxPolicy(LEGACY / "policy.onnx", want_gpu=False)
    assert policy.metadata.version == 1 and policy.metadata.chunking is None
    assert policy.obs_spec == OBS_SPEC and policy.act_spec == ACT_SPEC
    assert policy.groups.is_flat and policy.control_rate_hz == 20.0
    np.testing.assert_allclose(policy.act(ref["obs"]), ref["act_onnx"], atol=1e-5)
    np.testing.assert_allclose(policy.act(ref["obs"][0]), ref["act_onnx"][0], atol=1e-5)
    np.testing.assert_allclose(policy.act({"obs": ref["obs"]}), ref["act_onnx"], atol=1e-5)


def test_version_less_chunk_onnx_keeps_its_chunking():
    meta = PolicyMetadata.read(LEGACY / "chunk_policy.onnx")
    assert meta.version == 1 and meta.policy_kind == "action_chunk"
    assert (meta.chunking.chunk_length, meta.chunking.n_exec, meta.chunking.obs_history) == \
        (4, 2, 2)
    planner = OnnxChunkPlanner(LEGACY / "chunk_policy.onnx", want_gpu=False)
    chunk = planner(np.zeros((1, 2 * OBS_SPEC.dim), np.float32), np.random.default_rng(0))
    assert chunk.shape == (1, 4, ACT_SPEC.dim)
    assert np.all(chunk >= np.array(ACT_SPEC.low)) and np.all(chunk <= np.array(ACT_SPEC.high))

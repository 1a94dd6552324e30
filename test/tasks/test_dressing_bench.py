"""bench/bench_dressing.py per tick: the node's work and bare ONNX Runtime on one model."""

import pytest
from conftest import load_bench, needs_open3d

pytest.importorskip("pybullet")
pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.usefixtures("garment_cache"), needs_open3d]   # test/conftest.py


def _bench():
    return load_bench("bench_dressing")


def test_tick_cost_times_preprocessing_and_inference_of_a_points_student(tmp_path):
    bench = _bench()
    policy = bench.default_policy(tmp_path / "student.onnx", 64)
    out = bench.tick_cost(policy, ticks=12)
    assert out["tick_points"] == 64 and out["providers"] == ["CPUExecutionProvider"]
    for key in ("tick_ms", "bare_ort_ms"):
        assert 0 < out[key]["p50"] <= out[key]["p99"], out

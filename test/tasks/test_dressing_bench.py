"""bench/bench_dressing.py per tick: the node's work and bare ONNX Runtime on one model."""

import importlib.util
from pathlib import Path

import pytest
from conftest import needs_open3d

pytest.importorskip("pybullet")
pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.usefixtures("garment_cache"), needs_open3d]   # test/conftest.py

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_dressing.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_dressing", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tick_cost_times_preprocessing_and_inference_of_a_points_student(tmp_path):
    bench = _bench()
    policy = bench.default_policy(tmp_path / "student.onnx", 64)
    out = bench.tick_cost(policy, ticks=12)
    assert out["tick_points"] == 64 and out["providers"] == ["CPUExecutionProvider"]
    for key in ("tick_ms", "bare_ort_ms"):
        assert 0 < out[key]["p50"] <= out[key]["p99"], out

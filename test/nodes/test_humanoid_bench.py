"""bench/bench_humanoid_loop.py runs the demo's three nodes and reports what it measured.

No speed target is asserted (shared machines are noisy): the figures must agree with each
other and with the run's length, and the loop must have closed.
"""

import json
import subprocess
import sys

import pytest

from conftest import REPO, TEST_BACKEND

SECONDS, RATE = 3.0, 15.0


@pytest.mark.slow   # ~30 s: three node processes and the walk actor's ONNX file
def test_bench_reports_the_rate_latency_and_fresh_commands_of_the_humanoid_loop():
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_humanoid_loop.py"), "--seconds",
         str(SECONDS), "--rate", str(RATE), "--backend", TEST_BACKEND], capture_output=True,
        text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert out["backend"] == TEST_BACKEND and out["rate_hz"] == RATE
    interval = out["joint_states_interval"]
    assert interval["n"] == pytest.approx(out["sim_rate_hz"] * SECONDS - 1, abs=1)
    assert 0.3 * RATE < out["sim_rate_hz"] < 1.5 * RATE, out
    assert interval["p50_ms"] <= interval["p99_ms"] <= interval["max_ms"]
    latency = out["state_to_command"]
    assert latency["n"] > 0 and 0 < latency["p50_ms"] <= latency["max_ms"], latency
    assert 0 < out["fresh_command_fraction"] <= 1 and out["sim_steps"] > 0, out
    assert out["falls"] >= 0 and 0 <= out["mean_imitation_reward_of_episode"] <= 1

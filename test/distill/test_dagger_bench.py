"""bench/bench_dagger.py runs as users run it and its figures are consistent (tiny budgets)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_dagger_reports_every_variant_and_the_memory_cap():
    args = ["--rounds", "2", "--steps", "10", "--updates", "5", "--episodes", "1",
            "--rss-rounds", "3", "--rss-points", "64"]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_dagger.py"),
                           *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    rows = out["quality"]
    assert set(rows) == {"offline", "dagger_constant_0.5_mse", "dagger_linear_mse",
                         "dagger_exponential_mse", "dagger_on_demand_mse",
                         "dagger_linear_huber", "dagger_linear_forward_kl",
                         "dagger_linear_reverse_kl"}
    for name, row in rows.items():
        assert row["teacher_queries"] == 2 * 10 * len(out["seen"]), (name, row)
        assert 0.0 <= row["success_seen"] <= 1.0 and 0.0 <= row["success_held_out"] <= 1.0
        assert row["wall_s"] > 0
    capped, uncapped = out["memory"]["capped"], out["memory"]["uncapped"]
    assert capped["transitions"] == uncapped["transitions"] == 3 * 10 * len(out["seen"])
    assert uncapped["buffer_size"] == uncapped["transitions"] == 10 * capped["buffer_size"]
    # 64 points x 4 channels + a 3-command and its mask, float32, plus labels and task
    per_transition = (64 * 4 + 6 + 3) * 4 + 4
    assert abs(uncapped["buffer_mb"] * 2**20 - uncapped["buffer_size"] * per_transition) \
        < 0.06 * 2**20
    for run in (capped, uncapped):
        assert len(run["rss_mb_per_round"]) == 3
        assert run["peak_rss_mb"] >= max(run["rss_mb_per_round"]) - 1.0

"""bench/bench_dagger.py runs as users run it and its figures are consistent (tiny budgets)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # 11 s: eight variants through the bench script
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


def test_bench_dagger_grasp_compares_with_a_finished_run_it_only_reads(tmp_path, expert_file):
    from conftest import write_config
    from distill_ros.config import load_config
    from distill_ros.pipeline import run_stages

    tasks = ["cube", "lego"]
    common = dict(tasks=tasks, held_out=["rand009"], eval={"episodes": 2},
                  teachers={"sources": {t: str(expert_file) for t in tasks}, "eval_episodes": 1})
    offline = load_config(write_config(
        tmp_path / "off.yaml", collect={"episodes_per_task": 6, "shard_episodes": 6},
        distill={"epochs": 3}, **common))
    run = run_stages(offline, tmp_path / "run", ["teachers", "collect", "distill", "export"])
    dagger = write_config(tmp_path / "dag.yaml", distill={"algorithm": "dagger"}, dagger={
        "n_envs": 2, "vector": "sync", "rounds": 2, "steps_per_round": 10,
        "updates_per_round": 5, "eval_every": 2, "eval_episodes": 1}, **common)
    before = {p: p.read_bytes() for p in run.root.rglob("*") if p.is_file()}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "bench_dagger.py"), "--family", "grasp",
         "--run-dir", str(run.root), "--config", str(dagger), "--episodes", "2",
         "--seeds", "0", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert {p: p.read_bytes() for p in run.root.rglob("*") if p.is_file()} == before
    queries = out["offline"]["teacher_queries"]
    ledger = json.loads((run.root / "run.json").read_text())["stages"]["collect"]
    assert queries["stored"] == ledger["total_steps"] <= queries["queried"] <= 2 * 6 * 60
    runs = out["dagger"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert all(r["teacher_queries"] == 2 * 2 * 10 for r in runs), runs
    assert set(runs[0]["per_task"]) == {"cube", "lego", "rand009"}
    crit, seen = out["criteria"], out["dagger"]["success_mean_over_seeds"]["seen"]
    assert crit["queries_over_offline_queried"] == 40 / queries["queried"]
    assert crit["seen_met"] == (seen >= 0.9 * out["teachers"]["mean_seen"])
    assert crit["held_out_met"] == (crit["held_out_dagger_minus_offline"] >= 0)

"""bench/bench_humanoid.py runs as users run it and prints the JSON it promises."""

import json
import subprocess
import sys

import pytest
from conftest import REPO
from test_bench import run_bench


def test_bench_humanoid_prints_rewards_of_both_envs_and_speeds():
    out = run_bench("bench_humanoid.py", "--clips", "walk", "--seeds", "1", "--steps", "4")
    walk = out["clips"]["walk"]
    episode = walk["episodes"][0]
    assert episode["reference"]["steps"] == episode["ours_pybullet_variant"]["steps"] == 4
    assert 0.0 < episode["reference"]["reward"] <= 1.0
    assert walk["max_abs_diff_pybullet_variant"] < 0.02
    speeds = walk["env_steps_per_s_without_policy"]
    assert speeds["ours"] > 0 and speeds["reference"] > 0


@pytest.mark.slow  # 12 s: four tiny runs through the bench script
def test_bench_humanoid_distill_compares_teachers_multi_mode_and_specialists(tmp_path):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "name": "hum_bench", "family": "humanoid", "tasks": ["walk"], "seed": 0,
        "teachers": {"eval_episodes": 1},
        "student": {"arch": "mlp", "hidden": [16]},
        "distill": {"algorithm": "dagger"},
        "eval": {"episodes": 1},
        "dagger": {"n_envs": 1, "vector": "sync", "teacher_groups": ["state"],
                   "student_groups": ["proprio", "command"], "rounds": 1,
                   "steps_per_round": 10, "updates_per_round": 5, "batch_size": 8,
                   "eval_episodes": 1}}))
    proc = subprocess.run([sys.executable, "bench/bench_humanoid_distill.py", "--config",
                           str(config), "--runs", str(tmp_path / "runs"), "--modes",
                           "head_hands"], capture_output=True, text=True, timeout=900,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)  # the JSON alone: pybullet's prints go to stderr
    assert set(out["wall_s"]) == {"multi_mode", "specialist_head_hands"}
    rows = out["rows"]
    assert {(r["policy"], r["mode"]) for r in rows} == {
        ("teacher", "any"), ("multi-mode", "full"), ("multi-mode", "head_hands"),
        ("multi-mode", "upper_joints_root_velocity"), ("specialist", "head_hands")}
    multi = {r["mode"]: r for r in rows if r["policy"] == "multi-mode"}
    spec = next(r for r in rows if r["policy"] == "specialist")
    cell = out["versus_specialists"]["cells"][0]
    wins = {k for k in ("fall_rate", "mpjpe_mm", "joint_err_rad", "root_vel_err")
            if multi["head_hands"][k] <= spec[k]}
    wins |= {"reward"} if multi["head_hands"]["reward"] >= spec["reward"] else set()
    assert set(cell["multi_matches_or_beats"]) == wins
    teacher = next(r for r in rows if r["policy"] == "teacher")
    assert out["full_command_over_teacher"]["walk"] == \
        pytest.approx(multi["full"]["reward"] / teacher["reward"], abs=1e-3)
    table = (tmp_path / "runs" / "hum_bench" / "report" / "specialists" / "eval.md").read_text()
    assert "| specialist | walk | seen | head_hands |" in table
    # the same two students re-run start by start: the eval stage's first start gives its
    # rows, and the strict count is versus_specialists'
    versus = run_bench("bench_humanoid_versus.py", "--config", str(config), "--multi",
                       str(tmp_path / "runs" / "hum_bench"), "--specialist",
                       f"head_hands={tmp_path / 'runs' / 'hum_bench_specialist_head_hands'}",
                       "--episodes", "2", "--resamples", "100", "--processes", "2",
                       timeout=600)
    assert versus["episodes"] == 2 and versus["eval_stage_episodes"] == 1
    mode = versus["specialists"]["head_hands"]
    first = mode["clips"]["walk"]["eval_stage"]["metrics"]
    for k, m in first.items():
        assert m["mine"] == pytest.approx(multi["head_hands"][k], abs=1e-9), k
        assert m["theirs"] == pytest.approx(spec[k], abs=1e-9), k
    assert mode["eval_stage_strict"] == len(cell["multi_matches_or_beats"])
    assert mode["metrics"] == 5 and mode["strict"] <= 5 and mode["not_worse"] >= mode["strict"]
    folder = tmp_path / "runs" / "hum_bench" / "report" / "versus"
    assert json.loads((folder / "versus.json").read_text()) == versus
    assert (folder / "versus.png").stat().st_size > 0

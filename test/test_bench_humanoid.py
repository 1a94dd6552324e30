"""bench/bench_humanoid.py runs as users run it and prints the JSON it promises."""

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

"""The paired comparison of two policies on the same starts (bench_humanoid_versus's verdicts).

Episodes here are `episode_metrics` rows written by hand: the statistics must call a tie a
tie, a clear gap a gap, and aggregate as the eval stage does.
"""

import numpy as np
import pytest

from distill_ros.tasks.humanoid.evaluate import aggregate, paired_comparison
from distill_ros.tasks.humanoid.report import HIGHER_IS_BETTER


def _episodes(rng, n, reward=0.5, error=0.1, fall_every=0, noise=0.05):
    """n episodes of 100 steps (fewer for a fall), metrics as per-step sums."""
    runs = []
    for i in range(n):
        fell = bool(fall_every) and i % fall_every == 0
        steps = 40 if fell else 100
        per_step = [max(0.0, v + noise * rng.standard_normal()) for v in (reward, error)]
        runs.append({"steps": steps, "horizon": 100, "fell": fell,
                     "reward": per_step[0] * steps, "mpjpe_mm": 1000 * per_step[1] * steps,
                     "joint_err_rad": per_step[1] * steps,
                     "root_vel_err": 2 * per_step[1] * steps})
    return runs


def test_a_policy_against_itself_matches_on_every_metric():
    runs = _episodes(np.random.default_rng(0), 48, fall_every=5)
    out = paired_comparison(runs, runs)
    assert out["strict"] == out["not_worse"] == 5
    for m in out["metrics"].values():
        assert m["verdict"] == "matches" and m["diff"] == 0 and m["interval"] == [0.0, 0.0]


def test_a_clear_gap_beats_on_every_metric_and_the_mirror_loses():
    rng = np.random.default_rng(1)
    good = _episodes(rng, 48, reward=0.6, error=0.05)
    bad = _episodes(rng, 48, reward=0.4, error=0.15, fall_every=4)
    ahead, behind = paired_comparison(good, bad), paired_comparison(bad, good)
    assert {k: m["verdict"] for k, m in ahead["metrics"].items()} == dict.fromkeys(
        HIGHER_IS_BETTER, "beats")
    assert {k: m["verdict"] for k, m in behind["metrics"].items()} == dict.fromkeys(
        HIGHER_IS_BETTER, "loses")
    assert ahead["not_worse"] == 5 and behind["not_worse"] == 0 and behind["strict"] == 0
    lo, hi = ahead["metrics"]["fall_rate"]["interval"]
    assert lo <= ahead["metrics"]["fall_rate"]["diff"] == -0.25 <= hi < 0


def test_a_gap_within_the_noise_is_a_strict_loss_but_a_match():
    """One fall more in 24 starts, a joint error 1% higher on the whole but not start by
    start: strictly behind, not beyond noise. The same 1% on every start is beyond it."""
    rng = np.random.default_rng(2)
    base = _episodes(rng, 24, noise=0.05)
    scatter = 0.03 * 100 * rng.standard_normal(24)
    scatter -= scatter.mean()
    worse = [dict(r, joint_err_rad=r["joint_err_rad"] * 1.01 + d) for r, d in zip(base, scatter)]
    worse[3] = dict(worse[3], fell=True)
    out = paired_comparison(worse, base)
    for k in ("fall_rate", "joint_err_rad"):
        assert not out["metrics"][k]["strict"] and out["metrics"][k]["verdict"] == "matches"
    assert out["metrics"]["fall_rate"]["diff"] == pytest.approx(1 / 24)
    assert out["metrics"]["joint_err_rad"]["mine"] == pytest.approx(
        1.01 * out["metrics"]["joint_err_rad"]["theirs"])
    steady = [dict(r, joint_err_rad=r["joint_err_rad"] * 1.01) for r in base]
    assert paired_comparison(steady, base)["metrics"]["joint_err_rad"]["verdict"] == "loses"


def test_the_values_are_the_eval_stages_aggregates_and_the_interval_is_seeded():
    rng = np.random.default_rng(3)
    a, b = _episodes(rng, 30, fall_every=7), _episodes(rng, 30, reward=0.45)
    out = paired_comparison(a, b, seed=5)
    for k, m in out["metrics"].items():
        assert m["mine"] == aggregate(a)[k] and m["theirs"] == aggregate(b)[k]
    steps = sum(r["steps"] for r in a)
    assert out["metrics"]["mpjpe_mm"]["mine"] == sum(r["mpjpe_mm"] for r in a) / steps
    assert out["metrics"]["reward"]["mine"] == sum(r["reward"] for r in a) / 3000
    assert paired_comparison(a, b, seed=5) == out
    assert paired_comparison(a, b, seed=6)["metrics"]["reward"]["interval"] != \
        out["metrics"]["reward"]["interval"]


def test_unpaired_episode_lists_are_refused_with_the_reason():
    runs = _episodes(np.random.default_rng(4), 4)
    with pytest.raises(ValueError, match="same starts"):
        paired_comparison(runs, runs[:3])

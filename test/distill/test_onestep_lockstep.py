"""Lockstep evaluation gives, episode by episode, what ChunkedPolicy gives one at a time."""

import numpy as np
import pytest
import torch

from distill_ros.distill.onestep.lockstep import Chunking, lockstep_success, per_tick
from distill_ros.rollout import run_episode
from distill_ros.runtime.chunked import ChunkedPolicy
from distill_ros.tasks.base import make_env
from distill_ros.tasks.detour import DetourExpert

H, N_EXEC, HISTORY, OBS_DIM = 8, 3, 2, 7


class HistoryPlanner:
    """Deterministic, history-dependent: plans from the OLDEST frame, and fails on some seeds.

    Left of the post when the goal is above y = -0.01 m, else the average of both sides
    (into the post); every action of the chunk is the one for that frame (open loop).
    """

    def __init__(self) -> None:
        self.left, self.right = DetourExpert(1.0), DetourExpert(-1.0)
        self.batches: list[int] = []

    def __call__(self, rows: np.ndarray, rng) -> np.ndarray:
        self.batches.append(len(rows))
        oldest = torch.as_tensor(rows[:, :OBS_DIM], dtype=torch.float32)
        left, mean = self.left(oldest), 0.5 * (self.left(oldest) + self.right(oldest))
        act = torch.where(oldest[:, 3:4] > -0.01, left, mean).numpy()
        return np.repeat(act[:, None, :], H, axis=1)


def _one_at_a_time(planner, seeds):
    env = make_env("detour", "post")
    runner = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, HISTORY)
    out = []
    for seed in seeds:
        runner.reset(seed)
        out.append(run_episode(env, runner.act, seed).success)
    return np.array(out)


@pytest.mark.parametrize("block", [64, 7])
def test_lockstep_matches_the_chunked_runner_episode_by_episode(block):
    seeds = list(range(100, 140))
    expected = _one_at_a_time(HistoryPlanner(), seeds)
    assert 0 < expected.sum() < len(seeds), "the check needs both outcomes"
    planner = HistoryPlanner()
    got = lockstep_success("detour", "post", planner, Chunking(H, N_EXEC, HISTORY), seeds,
                           noise_seed=0, block=block)
    np.testing.assert_array_equal(got, expected)
    # one batched call per re-plan tick; finished episodes leave the batch
    assert max(planner.batches) == min(block, len(seeds))
    assert planner.batches[-1] < planner.batches[0]


def test_per_tick_policy_and_noise_are_reproducible():
    seeds = list(range(20))
    expert = DetourExpert(-1.0)
    act = per_tick(lambda o: expert(torch.as_tensor(o, dtype=torch.float32)).numpy())
    assert lockstep_success("detour", "pillar", act, Chunking(), seeds, noise_seed=0).all()

    def noisy(rows, rng):   # random side per plan: the outcome depends on the noise only
        side = np.sign(rng.standard_normal(len(rows)))[:, None]
        obs = torch.as_tensor(rows[:, -OBS_DIM:], dtype=torch.float32)
        act = np.where(side > 0, DetourExpert(1.0)(obs).numpy(), DetourExpert(-1.0)(obs).numpy())
        return np.repeat(act[:, None, :], H, axis=1)

    chunking = Chunking(H, N_EXEC, HISTORY)
    a = lockstep_success("detour", "post", noisy, chunking, seeds * 3, noise_seed=5)
    b = lockstep_success("detour", "post", noisy, chunking, seeds * 3, noise_seed=5)
    c = lockstep_success("detour", "post", noisy, chunking, seeds * 3, noise_seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and 0 < a.sum() < len(a)


def test_non_finite_actions_name_the_episode():
    def nan(rows, rng):
        return np.full((len(rows), H, 2), np.nan, np.float32)

    with pytest.raises(ValueError, match="non-finite action .* seed 3"):
        lockstep_success("detour", "post", nan, Chunking(H, N_EXEC, HISTORY), [3, 4], 0)

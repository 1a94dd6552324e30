"""The detour family: seeded, both demonstrators succeed, the data splits, the average crashes."""

import numpy as np
import pytest
import torch

from distill_ros.rollout import run_episode
from distill_ros.tasks.base import get_family, make_env
from distill_ros.tasks.detour import (POST_RADIUS, REACHER_RADIUS, SCRIPTED_EXPERTS, TASKS,
                                      DetourEnv, DetourExpert, segment_distance)


def _policy(module: torch.nn.Module):
    return lambda obs: module(torch.as_tensor(np.asarray(obs, np.float32))).detach().numpy()


def _side(episode) -> float:
    """+1 when the episode passed the post on the left (+y of it), -1 on the right."""
    obs = episode.obs
    at_post = np.argmin(np.abs(obs[:, 0] - obs[:, 4]))
    return float(np.sign(obs[at_post, 1] - obs[at_post, 5]))


def test_family_is_registered_seeded_and_both_experts_reach_every_task():
    fam = get_family("detour")
    assert fam.tasks == TASKS and fam.obs_spec.dim == 7 and fam.act_spec.dim == 2
    assert set(fam.scripted_experts) == {"detour_left", "detour_right"}
    for task in TASKS:
        env = make_env("detour", task)
        for name, side in (("detour_left", 1.0), ("detour_right", -1.0)):
            expert = _policy(torch.jit.script(SCRIPTED_EXPERTS[name]()))
            episodes = [run_episode(env, expert, seed) for seed in range(20)]
            assert all(e.success for e in episodes), f"{name} must pass the {task}"
            assert all(_side(e) == side for e in episodes), f"{name} keeps to its side"
        a, b = run_episode(env, expert, 7), run_episode(env, expert, 7)
        np.testing.assert_array_equal(a.obs, b.obs)
        assert not np.array_equal(a.obs[0], run_episode(env, expert, 8).obs[0])


def test_demonstrations_are_bimodal_from_the_same_starts():
    """Alternating demonstrators from one start distribution: half left, half right."""
    env = make_env("detour", "post")
    experts = [_policy(DetourExpert(1.0)), _policy(DetourExpert(-1.0))]
    episodes = [run_episode(env, experts[e % 2], seed=e) for e in range(40)]
    sides = np.array([_side(e) for e in episodes])
    assert (sides == 1).sum() == 20 and (sides == -1).sum() == 20
    # the side is not in the observation: the two modes' first observations overlap
    first = np.stack([e.obs[0] for e in episodes])
    left, right = first[sides == 1, 1], first[sides == -1, 1]
    assert left.min() < right.max() and right.min() < left.max()
    # and from one state the two first actions point to opposite sides of the post
    o = torch.as_tensor(first[:1])
    assert DetourExpert(1.0)(o)[0, 1] > 0.5 and DetourExpert(-1.0)(o)[0, 1] < -0.5


@pytest.mark.parametrize("task", TASKS)
def test_the_average_of_the_two_modes_drives_into_the_post(task):
    """What an MSE-trained BC policy learns from these data collides on every seed."""
    left, right = DetourExpert(1.0), DetourExpert(-1.0)

    def average(obs):
        o = torch.as_tensor(np.asarray(obs, np.float32))
        return (0.5 * (left(o) + right(o))).detach().numpy()

    env = DetourEnv(task)
    for seed in range(20):
        episode = run_episode(env, average, seed)
        assert not episode.success and env.collided, f"seed {seed}"
        assert len(episode.obs) < env.max_episode_steps


def test_contact_ends_the_episode_exactly_at_the_post_edge():
    env = DetourEnv("pillar")
    obs, _ = env.reset(seed=0)
    edge = POST_RADIUS["pillar"] + REACHER_RADIUS     # contact distance, m
    env.pos = obs[4:6].astype(np.float64) - np.array([edge + 0.051, 0.0])
    _, _, terminated, _, info = env.step(np.array([1.0, 0.0]))   # 5 cm: stops 1 mm short
    assert not terminated and not info["collision"]
    _, _, terminated, _, info = env.step(np.array([1.0, 0.0]))
    assert terminated and info["collision"] and not info["is_success"]
    assert segment_distance(np.zeros(2), np.array([2.0, 0.0]), np.array([1.0, 0.1])) \
        == pytest.approx(0.1)


def test_doing_nothing_fails_and_bad_input_names_the_fix():
    env = make_env("detour", "post")
    episode = run_episode(env, lambda obs: np.zeros((1, 2), np.float32), 0)
    assert not episode.success and len(episode.obs) == env.max_episode_steps
    with pytest.raises(ValueError, match="2 finite velocities"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="valid choices"):
        DetourEnv("wall")
    with pytest.raises(ValueError, match="side must be"):
        DetourExpert(0.5)

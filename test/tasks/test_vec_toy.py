"""The batched torch toy env (`tasks.toy_torch`) against the numpy `ToyEnv`, step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_ros.tasks import toy
from distill_ros.tasks.toy_torch import VEC_FAMILY, ToyVecEnv, expert_actions
from distill_ros.tasks.vec import VecEnv

TASKS = ["goal_0", "goal_5", "goal_2", "goal_0"]
SEEDS = [11, 12, 13, 99]
STEPS = 2 * toy.EPISODE_STEPS + 7  # two time-outs and auto-resets in every env


def _actions(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The expert plus noise that also leaves the speed limit (the clip is exercised)."""
    noise = rng.normal(0.0, 0.8, obs.shape[:1] + (3,))
    return (toy.expert_action(obs) + noise).astype(np.float32)


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                     reason="no CUDA device here"))


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("mask_prob", [0.0, 0.5])
def test_the_batch_replays_each_numpy_env_step_for_step(mask_prob, device):
    envs = [toy.ToyEnv(t, mask_prob=mask_prob) for t in TASKS]
    want = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, SEEDS)])
    vec = ToyVecEnv(TASKS, SEEDS, device, mask_prob=mask_prob)
    got = vec.reset()
    assert got.dtype == torch.float32 and got.shape == (4, 9) and got.device.type == device
    np.testing.assert_array_equal(got.cpu().numpy(), want)
    rng = np.random.default_rng(0)
    successes = 0
    for _ in range(STEPS):
        act = _actions(want, rng)
        obs, reward, done, info = vec.step(torch.from_numpy(act).to(device))
        assert reward.device.type == device
        rows = []
        for i, env in enumerate(envs):
            o, r, terminated, truncated, inf = env.step(act[i])
            assert reward[i].item() == pytest.approx(r, abs=1e-12)
            assert bool(done[i]) == (terminated or truncated)
            assert bool(info["is_success"][i]) == inf["is_success"]
            assert bool(info["time_outs"][i]) == truncated
            successes += bool(done[i]) and inf["is_success"]
            rows.append(env.reset()[0] if truncated else o)
        want = np.stack(rows)
        np.testing.assert_array_equal(obs.cpu().numpy(), want)
    assert successes >= 4  # episodes ended in success, so success is compared, not only 0s


def test_expert_actions_match_the_numpy_expert_and_solve_every_env():
    vec = ToyVecEnv(list(toy.TASKS), range(len(toy.TASKS)))
    obs = vec.reset()
    np.testing.assert_allclose(expert_actions(obs).numpy(), toy.expert_action(obs.numpy()),
                               rtol=1e-6)
    for _ in range(toy.EPISODE_STEPS):
        obs, _, done, info = vec.step(expert_actions(obs))
    assert done.all() and info["is_success"].all()


def test_the_env_follows_the_protocol_and_the_family_checks_its_input():
    vec = VEC_FAMILY.make_vec(["goal_1"] * 3, [0, 1, 2])
    assert isinstance(vec, VecEnv) and vec.num_envs == 3
    with pytest.raises(ValueError, match="unknown toy task"):
        VEC_FAMILY.make_vec(["goal_9"], [0])
    with pytest.raises(ValueError, match="one seed per env"):
        VEC_FAMILY.make_vec(["goal_1", "goal_2"], [0])
    vec.reset()
    with pytest.raises(ValueError, match=r"\(3, 3\) finite"):
        vec.step(torch.zeros(2, 3))


def test_a_thousand_envs_step_as_one_batch_on_cpu():
    n = 1024
    vec = ToyVecEnv([toy.TASKS[i % 8] for i in range(n)], range(n))
    obs = vec.reset()
    one = toy.ToyEnv(toy.TASKS[1023 % 8])
    np.testing.assert_array_equal(obs[1023].numpy(), one.reset(seed=1023)[0])
    for _ in range(toy.EPISODE_STEPS):
        obs, reward, done, info = vec.step(expert_actions(obs))
    assert reward.shape == (n,) and done.all()
    assert info["is_success"].float().mean() == 1.0


def test_the_isaacgym_adapter_without_isaacgym_names_the_extra():
    try:
        import isaacgym  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("Isaac Gym is installed here: the ImportError cannot happen")
    with pytest.raises(ImportError, match=r"pip install 'distill_ros\[isaacgym\]'") as err:
        import distill_ros.tasks.isaacgym_adapter  # noqa: F401
    assert "Isaac Gym" in str(err.value)

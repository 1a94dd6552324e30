"""The `humanoid` family is found by name and its layouts are the env's."""

import numpy as np

from distill_ros.tasks.base import get_family, make_env


def test_humanoid_family_tasks_are_clips_and_specs_match_the_env():
    fam = get_family("humanoid")
    assert {"walk", "jump", "spinkick", "backflip", "run", "kick", "punch"} <= set(fam.tasks)
    assert (fam.obs_spec.dim, fam.act_spec.dim) == (197, 36)
    assert fam.control_rate_hz == 30.0 and fam.max_episode_steps == 600
    env = make_env("humanoid", "walk")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (fam.obs_spec.dim,)
    np.testing.assert_array_equal(env.action_space.low, np.float32(fam.act_spec.low))
    np.testing.assert_array_equal(env.action_space.high, np.float32(fam.act_spec.high))
    assert env.max_seconds * fam.control_rate_hz == fam.max_episode_steps
    env.close()

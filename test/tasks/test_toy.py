"""The toy family: seeded, fast, grouped observations, an expert a student learns in seconds."""

import numpy as np
import pytest
import torch

from distill_ros.rollout import run_episode
from distill_ros.tasks.base import get_family, make_env
from distill_ros.tasks.toy import (POINT_SPREAD, TASKS, ToyEnv, expert_action, goal_centre,
                                   obs_groups)

GROUPS = ("state", "proprio", "points", "command")


def test_same_seed_same_episode_and_every_task_is_reached_by_the_expert():
    fam = get_family("toy")
    assert fam.tasks == TASKS and fam.obs_spec.dim == 9 and fam.act_spec.dim == 3
    for task in TASKS:
        env = make_env("toy", task)
        a, b = run_episode(env, expert_action, 3), run_episode(env, expert_action, 3)
        np.testing.assert_array_equal(a.obs, b.obs)
        assert a.success, f"the analytic expert must reach {task}"
        other = run_episode(env, expert_action, 4)
        assert not np.array_equal(a.obs[0], other.obs[0]), "another seed, another start"
        assert np.linalg.norm(a.obs[0][3:6] - goal_centre(task)) < 0.09


def test_doing_nothing_fails_so_success_measures_the_policy():
    env = make_env("toy", "goal_0")
    episode = run_episode(env, lambda obs: np.zeros((1, 3), np.float32), 0)
    assert not episode.success and len(episode.obs) == env.max_episode_steps


def test_groups_match_the_dict_space_and_the_goal_is_seen_only_through_the_cloud():
    env = ToyEnv("goal_2", groups=GROUPS, n_points=16)
    obs, _ = env.reset(seed=5)
    assert isinstance(env.observation_space, __import__("gymnasium").spaces.Dict)
    assert env.observation_space.contains(obs), {k: v.shape for k, v in obs.items()}
    assert set(obs) == {"state", "proprio", "points", "command", "command_mask"}
    cloud = obs["points"]
    goal_pts, mass_pts = cloud[cloud[:, 3] == 1][:, :3], cloud[cloud[:, 3] == 0][:, :3]
    assert len(goal_pts) == len(mass_pts) == 8
    np.testing.assert_allclose(goal_pts.mean(0), env.goal, atol=4 * POINT_SPREAD)
    np.testing.assert_allclose(mass_pts.mean(0), obs["proprio"], atol=4 * POINT_SPREAD)
    again, _ = env.reset(seed=5)
    np.testing.assert_array_equal(again["points"], cloud)  # the cloud is seeded too
    spec = obs_groups(GROUPS, n_points=16)  # the grouped spec students and ONNX files use
    spec.check_arrays(obs, "toy observation", batched=False)
    assert spec.input_names == ("state", "proprio", "points", "command", "command_mask")
    assert spec.group("points").kind == "points" and spec.group("command").kind == "command"


def test_masked_axes_are_not_commanded_and_not_required():
    env = ToyEnv("goal_1", groups=("proprio", "command"), mask_prob=0.5)
    masks = []
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        masks.append(obs["command_mask"].copy())
        assert obs["command_mask"].any(), "at least one axis is always commanded"
        np.testing.assert_array_equal(obs["command"][obs["command_mask"] == 0], 0.0)
        for _ in range(env.max_episode_steps):
            batch = {k: v[None] for k, v in obs.items()}
            obs, _, _, truncated, info = env.step(expert_action(batch)[0])
            if info["is_success"] or truncated:
                break
        assert info["is_success"], f"seed {seed}: the expert reaches the commanded axes"
    assert 0 < np.mean(masks) < 1, "masks vary between episodes"


def test_bad_options_name_the_fix():
    with pytest.raises(ValueError, match=r"unknown toy observation group\(s\) \['image'\]"):
        ToyEnv("goal_0", groups=("image",))
    with pytest.raises(ValueError, match="unknown toy task 'goal_9'"):
        ToyEnv("goal_9")


def test_a_student_learns_the_expert_in_seconds():
    from distill_ros.distill.behavior_cloning import Distillation
    from distill_ros.students.config import StudentConfig
    from distill_ros.students.factory import build_student

    fam = get_family("toy")
    envs = {task: make_env("toy", task) for task in TASKS}
    episodes = [run_episode(envs[task], expert_action, seed)
                for seed in range(30) for task in TASKS]
    obs = np.concatenate([e.obs for e in episodes])
    act = np.concatenate([e.act for e in episodes])
    torch.manual_seed(0)
    student = build_student(StudentConfig(hidden=[64, 64]), fam.obs_spec, fam.act_spec)
    student.set_normalizer(obs)
    algo = Distillation(student, 3e-3)
    o, a = torch.from_numpy(obs), torch.from_numpy(act)
    first = algo.evaluate(o, a)
    for _ in range(300):
        algo.update(o, a)
    assert algo.evaluate(o, a) < 0.1 * first, "the loss must fall by 10x"
    policy = algo.get_policy().eval()

    def act_fn(x):
        with torch.no_grad():
            return policy(torch.as_tensor(x)).numpy()

    wins = [run_episode(envs[t], act_fn, 10_000 + s).success for t in TASKS for s in range(5)]
    assert np.mean(wins) >= 0.9, f"student success {np.mean(wins):.2f} on unseen seeds"

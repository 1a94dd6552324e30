"""The humanoid env against pybullet's own DeepMimic env, and its DeepMimic semantics."""

import numpy as np
import pytest

from distill_ros.tasks.humanoid.pybullet_reference import (make_reference_env,
                                                           reference_start_time, run_reference)
from distill_ros.tasks.humanoid.env import HumanoidImitationEnv, action_to_targets, rollout
from distill_ros.tasks.humanoid.motion import MotionClip
from distill_ros.tasks.humanoid.skeleton import JOINTS, LINK_NAMES, action_names, state_names
from distill_ros.teachers.deepmimic import DeepMimicTeacher


def _run_ours(clip, teacher, start_time, steps, variant):
    env = HumanoidImitationEnv(clip, reward_variant=variant)
    out = rollout(env, teacher.act, start_time, steps)
    env.close()
    return out


def _compare(clip, seeds, steps, default_variant=True):
    """Mean imitation reward per seed: pybullet's env, ours (pybullet variant), ours default."""
    teacher = DeepMimicTeacher.for_clip(clip)
    ref = make_reference_env(clip)
    rows = []
    for seed in seeds:
        ref_rewards, ref_fell = run_reference(ref, teacher, seed, steps)
        start = reference_start_time(ref, seed)
        ours, fell = _run_ours(clip, teacher, start, steps, "pybullet")
        ours_dm = (_run_ours(clip, teacher, start, steps, "deepmimic")[0] if default_variant
                   else [np.nan])
        rows.append((seed, np.mean(ref_rewards), np.mean(ours), np.mean(ours_dm),
                     len(ref_rewards), len(ours), ref_fell, fell))
    ref._pybullet_client.disconnect()
    return rows


def test_walk_matches_pybullets_deepmimic_env():
    """Same teacher, same start: the same states and the same imitation reward (within .02)."""
    ref = make_reference_env("walk")
    start = reference_start_time(ref, 3)
    ref.reset()
    env = HumanoidImitationEnv("walk", reward_variant="pybullet")
    obs, info = env.reset(options={"start_time": start})
    np.testing.assert_allclose(obs, np.asarray(ref.record_state(0)), atol=1e-4)
    assert np.isclose(info["phase"], obs[0])
    env.close()
    ref._pybullet_client.disconnect()
    for seed, ref_mean, ours, ours_dm, n_ref, n_ours, ref_fell, fell in _compare(
            "walk", seeds=(0, 1), steps=40):
        assert (n_ref, ref_fell) == (n_ours, fell) == (40, False)
        assert abs(ours - ref_mean) < 0.02, (seed, ref_mean, ours)
        assert abs(ours_dm - ref_mean) < 0.02, (seed, ref_mean, ours_dm)


# not marked slow (8 s): the parity check over whole episodes, in the default run
@pytest.mark.parametrize("clip", ["walk", "jump"])
def test_long_episodes_match_pybullets_deepmimic_env(clip):
    for seed, ref_mean, ours, _, n_ref, n_ours, ref_fell, fell in _compare(
            clip, seeds=(0, 1, 2), steps=300, default_variant=False):
        assert (n_ref, ref_fell) == (n_ours, fell), seed
        assert abs(ours - ref_mean) < 0.02, (seed, ref_mean, ours)
        if clip == "walk":
            assert not fell, "the walk policy walks 300 steps (10 s) in both envs"


def test_reward_is_one_on_the_clip_and_falls_with_the_error():
    env = HumanoidImitationEnv("walk")
    env.reset(options={"start_time": 0.4})
    reward, info = env.reward()  # the character is exactly in the clip's pose and velocity
    assert reward == pytest.approx(1.0, abs=1e-6), info
    env.sim.pb.resetBasePositionAndOrientation(env.sim.body, [0.0, 0.9, 0.3], [0, 0, 0, 1])
    worse, info = env.reward()
    assert worse < 0.8 and info["root_err"] > 0.05 and info["end_eff_err"] > 0.05
    env.close()
    env = HumanoidImitationEnv("walk", reward_variant="pybullet")
    env.reset(options={"start_time": 0.4})
    reward, info = env.reward()
    assert reward < 1.0 and info["vel_err"] > 1.0, "pybullet's variant compares with zero"
    env.close()
    env = HumanoidImitationEnv("walk", com_reward=True)
    env.reset(options={"start_time": 0.9})
    reward, info = env.reward()
    assert reward == pytest.approx(1.0, abs=1e-6) and info["com_err"] < 1e-10, info
    env.sim.pb.resetBaseVelocity(env.sim.body, [0.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    assert env.reward()[1]["com_err"] > 0.05
    env.close()


def test_reset_is_reference_state_initialisation_and_seeded():
    env = HumanoidImitationEnv("jump")
    a, info_a = env.reset(seed=7)
    b, info_b = env.reset(seed=7)
    c, info_c = env.reset(seed=8)
    np.testing.assert_array_equal(a, b)
    assert info_a["time"] == info_b["time"] != info_c["time"]
    cycle = env.clip.cycle_time
    assert 0.0 <= info_c["time"] <= cycle
    assert a.shape == (197,) and a[0] == pytest.approx(env.clip.phase(info_a["time"]))
    ref = env.clip.pose(info_a["time"])
    assert a[1] == pytest.approx(ref.root_pos[1], abs=1e-5), "state[1] is the root height"
    env.close()


def test_walk_teacher_keeps_walking_and_random_actions_fall():
    teacher = DeepMimicTeacher.for_clip("walk")
    env = HumanoidImitationEnv("walk")
    obs, _ = env.reset(seed=0)
    rewards = []
    for _ in range(150):
        obs, r, fell, _, _ = env.step(teacher.act(obs))
        assert not fell
        rewards.append(r)
    assert np.mean(rewards) > 0.5
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for step in range(60):
        _, _, fell, _, _ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        if fell:
            break
    assert fell and step < 40, "random PD targets should topple the character"
    env.close()


def test_action_is_axis_angle_per_spherical_joint():
    import pybullet

    action = np.zeros(36)
    action[0:4] = [0.7, 0.0, 0.0, 2.0]  # chest: 0.7 rad about z (axis is normalised)
    action[12] = -1.1  # right knee, revolute
    targets = action_to_targets(action)
    assert len(targets) == 12 and len(targets[3]) == 1 and targets[3][0] == -1.1
    np.testing.assert_allclose(targets[0], pybullet.getQuaternionFromAxisAngle([0, 0, 1], 0.7),
                               atol=1e-7)


def test_clip_timing_and_bad_arguments():
    clip = MotionClip.named("walk")
    assert clip.num_frames == 39 and clip.cycle_time == pytest.approx(38 * clip.frame_dt)
    later = clip.pose(0.3 + clip.cycle_time)
    np.testing.assert_allclose(later.root_pos - clip.pose(0.3).root_pos, clip.cycle_offset,
                               atol=1e-9)
    with pytest.raises(FileNotFoundError, match="walk"):
        MotionClip.named("moonwalk")
    with pytest.raises(ValueError, match="multiple of control_hz"):
        HumanoidImitationEnv("walk", control_hz=70)
    with pytest.raises(ValueError, match="reward_variant"):
        HumanoidImitationEnv("walk", reward_variant="paper")


def test_layouts_are_named_after_the_urdf():
    env = HumanoidImitationEnv("walk")
    pb, body = env.sim.pb, env.sim.body
    links = tuple(pb.getJointInfo(body, j)[12].decode() for j in range(pb.getNumJoints(body)))
    assert links == LINK_NAMES
    for joint in JOINTS:
        info = pb.getJointInfo(body, joint.index)
        assert info[1].decode() == joint.name
        assert info[2] == (pb.JOINT_SPHERICAL if joint.dof == 3 else pb.JOINT_REVOLUTE)
    obs, _ = env.reset(options={"start_time": 0.5})
    names = state_names()
    assert len(names) == len(set(names)) == obs.shape[0] == 197
    assert names[:5] == ["phase", "root_height", "root/pos_x", "root/pos_y", "root/pos_z"]
    assert len(action_names()) == env.action_space.shape[0] == 36
    assert action_names()[12] == "right_knee/angle"
    env.close()

"""HOVER's command space: layout, mode and sparsity masks, frame invariance, determinism."""

import numpy as np
import pytest

from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.commands import (ITEMS, MODES, CommandSampler, CommandSpace,
                                                 ReferenceFrames, apply_mask)
from distill_ros.tasks.humanoid.skeleton import JOINTS, KEY_BODIES


def _random_frames(rng, t=6):
    rot = rng.normal(size=(t, 4))
    joint_rot = []
    for j in JOINTS:
        q = rng.normal(size=(t, 4))
        joint_rot.append(q / np.linalg.norm(q, axis=1, keepdims=True) if j.dof == 3
                         else rng.normal(size=(t, 1)))
    return ReferenceFrames(rng.normal(size=(t, 3)), rot / np.linalg.norm(rot, axis=1)[:, None],
                           rng.normal(size=(t, 3)), rng.normal(size=(t, 3)), joint_rot,
                           rng.normal(size=(t, len(KEY_BODIES), 3)))


def _selected(space, mask):
    return {n.split("/", 1)[1].rsplit("[", 1)[0] for n, m in zip(space.names(), mask) if m}


def test_layout_has_keypoints_joints_and_root_per_future_frame():
    space = CommandSpace(future_steps=(1, 5))
    assert space.frame_dim == 6 * 3 + (8 * 3 + 4) + 5 == 51
    assert space.dim == 102 and len(space.names()) == 102
    assert space.names()[0] == "+1/keypoint/head[0]" and space.names()[51].startswith("+5/")
    cmd = space.compute(_random_frames(np.random.default_rng(0)))
    assert cmd.shape == (102,) and np.isfinite(cmd).all()
    with pytest.raises(ValueError, match="up to \\+5"):
        space.compute(_random_frames(np.random.default_rng(0), t=5))


def test_modes_show_exactly_their_items_and_halves_partition_the_command():
    space = CommandSpace()
    assert _selected(space, space.mask(MODES["head_hands"])) == {
        "keypoint/head", "keypoint/right_hand", "keypoint/left_hand"}
    shown = _selected(space, space.mask(MODES["upper_joints_root_velocity"]))
    assert shown == {f"joint/{j.name}" for j in JOINTS if j.upper} | {"root/root_velocity"}
    assert space.mask(MODES["full"]).all()
    upper, lower = space.mask(MODES["upper_body"]), space.mask(MODES["lower_body"])
    np.testing.assert_array_equal(upper + lower, np.ones(space.dim))
    assert {"root/root_height", "root/root_yaw_rate", "keypoint/pelvis"} <= _selected(
        space, lower)
    with pytest.raises(ValueError, match="unknown command items"):
        space.mask({"joint/tail"})


def test_masked_values_are_zero_and_cannot_change_what_the_student_sees():
    space = CommandSpace()
    rng = np.random.default_rng(1)
    cmd = space.compute(_random_frames(rng))
    mask = space.mask(MODES["head_hands"])
    seen = apply_mask(cmd, mask)
    assert (seen[mask == 0] == 0).all()
    np.testing.assert_allclose(seen[mask == 1], cmd[mask == 1], rtol=1e-6)
    other = cmd + (1 - mask) * rng.normal(size=cmd.shape) * 100
    np.testing.assert_array_equal(apply_mask(other, mask), seen)


def test_command_does_not_depend_on_where_the_clip_is_in_the_world():
    rng = np.random.default_rng(2)
    frames = _random_frames(rng)
    space = CommandSpace(future_steps=(0, 1, 3))
    yaw, shift = quat.yaw_quat(np.array(1.1)), np.array([3.0, 0.0, -2.0])
    moved = ReferenceFrames(
        quat.rotate(yaw, frames.root_pos) + shift, quat.mul(yaw, frames.root_rot),
        quat.rotate(yaw, frames.root_lin_vel), quat.rotate(yaw, frames.root_ang_vel),
        frames.joint_rot, quat.rotate(yaw, frames.body_pos) + shift)
    np.testing.assert_allclose(space.compute(moved), space.compute(frames), atol=1e-9)


def test_sparsity_drops_whole_items_inside_the_mode_and_keeps_one():
    space = CommandSpace()
    sampler = CommandSampler(space, modes=("full", "lower_body"), sparsity=0.6, seed=3)
    sizes = {i.name: i.size for i in ITEMS}
    for episode in range(30):
        mask = sampler.reset()
        assert mask.any()
        assert sampler.items <= MODES[sampler.mode]
        assert set(_selected(space, mask)) == set(sampler.items)
        assert mask.sum() == sum(sizes[n] for n in sampler.items), "items kept whole"
    dense = CommandSampler(space, modes=("full",), sparsity=0.0, seed=3)
    assert dense.reset().all()


def test_mode_weights_and_whole_draws_set_how_often_each_mask_shows():
    space = CommandSpace()
    sampler = CommandSampler(space, sparsity=0.6, weights={"full": 3.0}, whole_prob=0.5, seed=4)
    draws = []
    for _ in range(4000):
        sampler.reset()
        draws.append((sampler.mode, sampler.items == MODES[sampler.mode]))
    full = np.mean([m == "full" for m, _ in draws])
    assert abs(full - 3 / (len(MODES) + 2)) < 0.03, f"full drawn {full:.3f} of the time"
    whole = np.mean([w for _, w in draws])
    # whole draws (0.5) plus sparse draws that happen to drop nothing (0.4 ** items: ~0.02)
    assert 0.47 < whole < 0.56, f"{whole:.3f} of the draws keep their mode whole"
    never = CommandSampler(space, sparsity=0.6, whole_prob=0.0, seed=4)
    for _ in range(500):
        never.reset()
        assert never.items != MODES["full"], "sparsity 0.6 kept all 21 items of full"
    with pytest.raises(ValueError, match="weights"):
        CommandSampler(space, modes=("full",), weights={"dance": 1.0})
    with pytest.raises(ValueError, match="weights"):
        CommandSampler(space, modes=("full", "root"), weights={"full": -1.0})
    with pytest.raises(ValueError, match="whole_prob"):
        CommandSampler(space, whole_prob=1.5)


def test_sampler_is_seeded_and_switches_mid_episode_when_asked():
    space = CommandSpace()

    def trace(seed, switch_prob):
        sampler = CommandSampler(space, sparsity=0.3, switch_prob=switch_prob, seed=seed)
        out = [(sampler.mode, sampler.reset().tobytes())]
        out += [(sampler.mode, sampler.step().tobytes()) for _ in range(40)]
        return out

    assert trace(5, 0.2) == trace(5, 0.2)
    assert trace(5, 0.2) != trace(6, 0.2)
    steady = trace(5, 0.0)
    assert len(set(steady[1:])) == 1, "no switching without switch_prob"
    assert len({m for m, _ in trace(5, 0.2)}) > 1, "switch_prob 0.2 switches over 40 steps"
    with pytest.raises(ValueError, match="modes"):
        CommandSampler(space, modes=("dance",))
    with pytest.raises(ValueError, match="sparsity"):
        CommandSampler(space, sparsity=1.0)


def test_commands_from_the_walk_clip():
    from distill_ros.tasks.humanoid.env import HumanoidImitationEnv

    env = HumanoidImitationEnv("walk")
    env.reset(options={"start_time": 0.2})
    frames = env.reference_frames(steps=3)
    env.close()
    space = CommandSpace(future_steps=(0, 3))
    cmd = space.compute(frames)
    now = {n: cmd[s[0]] for n, s in space.slices.items()}
    assert now["keypoint/head"][1] > 0.3, "head above the root"
    assert now["keypoint/right_foot"][1] < -0.5 and now["keypoint/left_foot"][1] < -0.5
    assert 0.6 < now["root/root_height"][0] < 1.0
    assert now["root/root_velocity"][0] > 0.5, "walking forward along its heading"
    knee = [i for i, j in enumerate(JOINTS) if j.name == "right_knee"][0]
    assert now["joint/right_knee"][0] == pytest.approx(frames.joint_rot[knee][0, 0])
    later = cmd[space.slices["keypoint/pelvis"][1]]
    assert later[0] > now["keypoint/pelvis"][0] + 0.05, "3 steps later the pelvis is ahead"

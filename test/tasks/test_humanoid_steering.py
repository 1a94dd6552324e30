"""Heading feedback: the student's `root/heading_error` item and the steered DeepMimic expert."""

import numpy as np
import pytest

from distill_ros.tasks.base import get_family, make_env
from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.steering import (STEER_GAIN, STEER_LIMIT, STEER_OFFSET,
                                                 SteeredTeacher, heading_error, steer_action)
from distill_ros.teachers.deepmimic import DeepMimicTeacher


@pytest.fixture(scope="module")
def walk_expert():
    return DeepMimicTeacher.for_clip("walk")


def _hip_rotation(action: np.ndarray) -> np.ndarray:
    i = STEER_OFFSET
    return quat.from_axis_angle(action[..., i + 1:i + 4], action[..., i])


def test_a_steer_twists_only_the_left_hip_by_the_clipped_error(walk_expert):
    state = np.random.default_rng(0).normal(scale=0.1, size=(3, 197)).astype(np.float32)
    state[:, 0] = 0.3
    label = walk_expert.act(state).astype(np.float64)
    np.testing.assert_allclose(steer_action(label, np.zeros(3)), label, atol=1e-12)
    errors = np.array([0.05, -0.05, 1.0])   # the last is beyond the limit
    steered = steer_action(label, errors)
    others = np.setdiff1d(np.arange(36), STEER_OFFSET + np.arange(4))
    np.testing.assert_array_equal(steered[:, others], label[:, others])
    twist = quat.yaw_quat(np.clip(STEER_GAIN * errors, *STEER_LIMIT))
    assert np.clip(1.0, *STEER_LIMIT) < 1.0
    # the same rotation as expert * twist (up to the quaternion's sign)
    dot = np.abs(np.sum(quat.mul(_hip_rotation(label), twist) * _hip_rotation(steered), axis=1))
    np.testing.assert_allclose(dot, 1.0, atol=1e-9)
    # a small twist moves the label a little: no jump between equal rotations
    assert np.abs(steer_action(label, np.full(3, 1e-3)) - label).max() < 1e-2


def test_the_heading_is_told_with_the_yaw_rate_command_and_hidden_with_it():
    env = make_env("humanoid", "walk", groups=("state", "command", "heading"))
    obs, _ = env.reset(seed=2, options={"mode": "full"})
    assert obs["heading"].shape == (1,) and abs(obs["heading"][0]) < 1e-6  # starts on the clip
    expert = DeepMimicTeacher.for_clip("walk")
    for _ in range(5):
        obs, *_ = env.step(expert.act(obs["state"]))
    assert obs["heading"][0] == pytest.approx(env.heading.value) and obs["heading"][0] != 0.0
    yaw_rate = env.space.names().index("+1/root/root_yaw_rate[0]")
    env.set_mode("head_hands")   # the root hidden from the student: the teacher is told 0 too
    obs, *_ = env.step(expert.act(obs["state"]))
    assert obs["command_mask"][yaw_rate] == 0.0
    assert obs["heading"][0] == 0.0 and env.heading.value != 0.0
    env.close()


def test_only_the_walk_is_steered_other_clips_are_told_no_heading():
    """The twist was measured on the walk's gait: a jump's labels stay the shipped expert's."""
    expert = DeepMimicTeacher.for_clip("jump")
    env = make_env("humanoid", "jump", groups=("state", "heading"))
    obs, _ = env.reset(seed=2, options={"mode": "full", "yaw": np.radians(25.0)})
    for _ in range(5):
        obs, *_ = env.step(expert.act(obs["state"]))
        assert obs["heading"][0] == 0.0   # 25 degrees off the clip, and told nothing
    env.close()
    steered = make_env("humanoid", "jump", groups=("state", "heading"),
                       steered_clips=("jump",))
    obs, _ = steered.reset(seed=2, options={"mode": "full", "yaw": np.radians(25.0)})
    assert obs["heading"][0] == pytest.approx(-np.radians(25.0), abs=1e-6)
    steered.close()


def _turned_walk(teacher, start_time: float, yaw_deg: float, steps: int) -> list[float]:
    """Headings (deg, the clip's minus the character's) of a walk started `yaw_deg` off it."""
    env = make_env("humanoid", "walk", groups=("state", "heading"))
    obs, _ = env.reset(options={"start_time": start_time, "yaw": np.radians(yaw_deg),
                                "mode": "full"})
    assert obs["heading"][0] == pytest.approx(-np.radians(yaw_deg), abs=1e-6)
    out = []
    for step in range(steps):
        action = teacher.act(np.concatenate([obs["state"], obs["heading"]]))
        obs, _, fell, _, _ = env.step(action)
        assert not fell, f"fell at step {step}"
        ref = env.clip.pose(env.time)
        out.append(np.degrees(heading_error(ref.root_rot, env.sim.read().base_rot)))
    env.close()
    return out


class _StateOnly:
    """The plain expert behind the same 198-value input (the heading is ignored)."""

    def __init__(self, expert):
        self.expert = expert

    def act(self, obs):
        return self.expert.act(obs[..., :197])


@pytest.mark.parametrize("start_time, yaw_deg", [(0.2, -25.0), (0.0, 25.0)])
def test_the_steered_expert_turns_a_turned_walker_back_and_the_plain_one_does_not(
        walk_expert, start_time, yaw_deg):
    steps = 150   # 5 s
    plain = _turned_walk(_StateOnly(walk_expert), start_time, yaw_deg, steps)
    steered = _turned_walk(SteeredTeacher(walk_expert), start_time, yaw_deg, steps)
    # the heading swings by about +-7 deg within a step: compare the last gait cycle's means
    last = slice(steps - 38, steps)
    off_plain, off_steered = abs(np.mean(plain[last])), abs(np.mean(steered[last]))
    assert off_plain > 20.0, f"the plain expert came back to {off_plain:.1f} deg of 25"
    assert off_steered < off_plain - 10.0, (off_steered, off_plain)


def test_the_family_steers_only_a_teacher_that_reads_state_then_heading(walk_expert):
    wrap = get_family("humanoid").teacher_for_groups
    assert wrap(walk_expert, ("state",)) is walk_expert
    steered = wrap(walk_expert, ("state", "heading"))
    assert isinstance(steered, SteeredTeacher) and steered.obs_dim == 198
    with pytest.raises(ValueError, match=r"\[state, heading\]"):
        wrap(walk_expert, ("heading", "state"))
    with pytest.raises(ValueError, match="teacher_groups: \\[state, heading\\]"):
        steered.act(np.zeros(197, np.float32))

"""The humanoid env's observation groups: privileged state, proprioception, masked command."""

import numpy as np
import pytest

from distill_ros.tasks.base import get_family, make_env
from distill_ros.tasks.humanoid.character import KinematicHumanoid
from distill_ros.tasks.humanoid.commands import EVAL_MODES, MODES, CommandSpace
from distill_ros.tasks.humanoid.env import reference_frames
from distill_ros.tasks.humanoid.hover import GROUPS, HoverEnv
from distill_ros.tasks.humanoid.motion import MotionClip
from distill_ros.teachers.deepmimic import DeepMimicTeacher

SPECIALIST = "distill_ros.tasks.humanoid.family:specialist_head_hands"


def test_groups_are_the_state_without_phase_and_a_masked_command():
    env = make_env("humanoid", "walk", groups=GROUPS)
    obs, info = env.reset(seed=3)
    assert sorted(obs) == ["command", "command_mask", "heading", "proprio", "state"]
    assert obs["state"].shape == (197,) and obs["proprio"].shape == (196,)
    np.testing.assert_array_equal(obs["proprio"], obs["state"][1:])  # all but the phase
    assert obs["state"][0] == pytest.approx(env.clip.phase(env.time))
    mask = obs["command_mask"]
    full = env.command()
    np.testing.assert_array_equal(obs["command"],
                                  np.where(mask > 0.5, full, 0.0).astype(np.float32))
    assert 0 < mask.sum() <= mask.size and info["mode"] in MODES
    assert env.observation_space.contains(obs)
    env.close()


def test_the_command_is_the_clips_next_frame():
    """With the full mode, the command's joint angles are the reference's one step ahead."""
    env = make_env("humanoid", "walk", groups=("command",))
    obs, _ = env.reset(seed=0, options={"mode": "full"})
    assert obs["command_mask"].all()
    pose = env.clip.pose(env.time + 1.0 / env.control_hz)
    names = env.space.names()
    elbow = names.index("+1/joint/right_elbow[0]")
    assert obs["command"][elbow] == pytest.approx(pose.joint_pos[6][0], abs=1e-6)
    height = names.index("+1/root/root_height[0]")
    assert obs["command"][height] == pytest.approx(pose.root_pos[1], abs=1e-6)
    # a publisher with no simulated character computes the same command from the clip alone
    kin = KinematicHumanoid()
    frames = reference_frames(MotionClip.named("walk"), kin, env.time, 1, 30, bodies={1})
    np.testing.assert_allclose(CommandSpace((1,)).compute(frames), env.command(), atol=1e-9)
    kin.close()
    env.close()


def test_masks_are_seeded_drawn_per_episode_and_switch_mid_episode():
    teacher = DeepMimicTeacher.for_clip("walk")

    def masks(seed):
        env = HoverEnv("walk", modes=tuple(MODES), sparsity=0.3, switch_prob=0.2)
        obs, _ = env.reset(seed=seed)
        out = [obs["command_mask"]]
        for _ in range(15):
            obs, *_ = env.step(teacher.act(obs["state"]))
            out.append(obs["command_mask"])
        env.close()
        return np.array(out)

    a, b, c = masks(1), masks(1), masks(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len({m.tobytes() for m in a}) > 1, "switch_prob 0.2 never switched in 15 steps"


def test_a_pinned_mode_holds_until_changed():
    env = HoverEnv("walk", modes=tuple(MODES), sparsity=0.5, switch_prob=1.0)
    obs, info = env.reset(seed=0, options={"mode": "head_hands"})
    hands = env.space.mask(MODES["head_hands"])
    np.testing.assert_array_equal(obs["command_mask"], hands)
    obs, *_, info = env.step(np.zeros(36))
    np.testing.assert_array_equal(obs["command_mask"], hands)
    assert info["mode"] == "head_hands"
    env.set_mode("full")
    obs, *_ = env.step(np.zeros(36))
    assert obs["command_mask"].all()
    with pytest.raises(ValueError, match="mode must be one of .*full"):
        env.set_mode("hands")
    env.close()


def test_specialist_families_show_their_mode_only():
    fam = get_family(SPECIALIST)
    assert fam.tasks == get_family("humanoid").tasks
    env = fam.make("walk", groups=("command",))
    hands = env.space.mask(MODES["head_hands"])
    obs, _ = env.reset(seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(obs["command_mask"], hands)
        obs, *_ = env.step(np.zeros(36))
    env.close()
    assert fam.evaluate.keywords["modes"] == ("head_hands",)  # evaluated on its own mode
    assert get_family("humanoid").evaluate.keywords["modes"] == EVAL_MODES
    with pytest.raises(ValueError, match="no 'specialist_hands'"):
        get_family("distill_ros.tasks.humanoid.family:specialist_hands")


def test_tracking_errors_are_zero_on_the_clip_and_an_episode_that_lasts_succeeds():
    env = HoverEnv("walk", groups=("state",), max_seconds=0.2)
    env.reset(seed=0)
    _, info = env.reward()  # the character was just put in the clip's pose
    assert info["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    assert info["joint_err_rad"] == pytest.approx(0.0, abs=1e-4)
    assert info["root_vel_err"] == pytest.approx(0.0, abs=1e-6)
    teacher = DeepMimicTeacher.for_clip("walk")
    obs, _ = env.reset(seed=0, options={"start_time": 0.0})
    for _ in range(7):
        obs, _, fell, truncated, info = env.step(teacher.act(obs["state"]))
        if fell or truncated:
            break
    assert truncated and info["is_success"] and not fell
    env.close()


def test_a_fall_counts_the_steps_it_cut_off_as_zero_reward():
    """The horizon of a fallen episode is what the same start gives a policy that lasts."""
    from distill_ros.tasks.humanoid.evaluate import episode_metrics, teacher_act

    env = HoverEnv("walk", max_seconds=3.0)
    fallen = episode_metrics(env, lambda g: np.zeros(36), seed=0, mode="full")
    lasted = episode_metrics(env, teacher_act(DeepMimicTeacher.for_clip("walk")), seed=0,
                             mode="full")
    env.close()
    assert fallen["fell"] and not lasted["fell"]
    assert fallen["steps"] < fallen["horizon"]
    assert abs(fallen["horizon"] - lasted["steps"]) <= 1
    assert lasted["horizon"] == lasted["steps"]

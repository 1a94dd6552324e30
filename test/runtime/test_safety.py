"""The safety filter alone: NaN guard, clamp, position limits, rate limit, hold."""

import numpy as np
import pytest

from distill_ros.runtime.safety import PositionLimit, SafetyConfig, SafetyFilter

NAMES = ["ee_vx", "ee_vz", "gripper_opening"]


def make(**kwargs) -> SafetyFilter:
    settings = dict(names=NAMES, low=[-0.2, -0.2, 0.0], high=[0.2, 0.2, 0.08],
                    hold_last=["gripper_opening"], initial_hold=[0.0, 0.0, 0.08])
    settings.update(kwargs)
    return SafetyFilter(SafetyConfig(**settings))


def test_clamps_to_the_command_limits():
    command, note = make().apply([1.0, -1.0, 0.5], dt=0.0)
    np.testing.assert_allclose(command, [0.2, -0.2, 0.08])
    assert note == ""


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_becomes_the_hold_command(bad):
    safety = make()
    safety.apply([0.1, 0.1, 0.03], dt=0.0)
    command, note = safety.apply([0.1, bad, 0.05], dt=0.01)
    # velocities stop, the gripper keeps its last commanded opening
    np.testing.assert_allclose(command, [0.0, 0.0, 0.03])
    assert note == "non-finite action" and safety.rejected == 1
    assert np.all(np.isfinite(command))


def test_wrong_sized_action_is_held_with_a_reason():
    command, note = make().apply([0.1, 0.1], dt=0.0)
    np.testing.assert_allclose(command, [0.0, 0.0, 0.08])   # the initial hold
    assert "2 elements, expected 3" in note


def test_position_limit_blocks_only_the_direction_past_the_range():
    safety = make(position_limits=[PositionLimit("ee_vz", "ee_z", 0.0, 0.5)])
    at_top = {"ee_z": 0.5}
    command, _ = safety.apply([0.1, 0.1, 0.04], dt=0.0, joint_positions=at_top)
    assert command[1] == 0.0, "must not push above the joint's upper limit"
    command, _ = safety.apply([0.1, -0.1, 0.04], dt=0.0, joint_positions=at_top)
    assert command[1] == pytest.approx(-0.1), "moving back into the range is allowed"
    command, _ = safety.apply([0.1, 0.1, 0.04], dt=0.0, joint_positions={"ee_z": 0.2})
    assert command[1] == pytest.approx(0.1)


def test_rate_limit_bounds_the_change_per_second():
    safety = make(max_rate=[1.0, 1.0, 0.5])
    safety.apply([0.0, 0.0, 0.0], dt=0.0)
    command, _ = safety.apply([0.2, -0.2, 0.08], dt=0.05)
    np.testing.assert_allclose(command, [0.05, -0.05, 0.025])
    for _ in range(10):
        command, _ = safety.apply([0.2, -0.2, 0.08], dt=0.05)
    np.testing.assert_allclose(command, [0.2, -0.2, 0.08])


def test_rate_limit_starts_from_a_recorded_hold():
    safety = make(max_rate=[1.0])
    safety.apply([0.2, 0.2, 0.08], dt=0.0)
    safety.mark_held(safety.hold())                 # e.g. the watchdog sent a hold
    command, _ = safety.apply([0.2, 0.2, 0.08], dt=0.01)
    np.testing.assert_allclose(command[:2], [0.01, 0.01])


@pytest.mark.parametrize("kwargs, match", [
    (dict(low=[0.0, 0.0]), "low has 2 values for 3 command elements"),
    (dict(max_rate=[1.0, 2.0]), "max_rate needs 0, 1 or 3 values"),
    (dict(hold_last=["gripper"]), r"unknown command elements \['gripper'\]"),
    (dict(position_limits=[PositionLimit("ee_vy", "ee_y", -1, 1)]), "unknown command"),
])
def test_bad_settings_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_position_limit_needs_low_below_high():
    with pytest.raises(ValueError, match="joint 'ee_z' needs low < high"):
        PositionLimit("ee_vz", "ee_z", 0.5, 0.5)


def test_rate_limit_cannot_undo_the_position_limit():
    """Decelerating from 0.2 m/s at the top of the range: the rate limit must not keep it > 0."""
    safety = make(max_rate=[1.0], position_limits=[PositionLimit("ee_vz", "ee_z", 0.0, 0.5)])
    safety.apply([0.0, 0.2, 0.04], dt=0.0, joint_positions={"ee_z": 0.3})
    for _ in range(3):
        command, _ = safety.apply([0.0, 0.2, 0.04], dt=0.05, joint_positions={"ee_z": 0.6})
        assert command[1] <= 0.0, f"still pushing up past the limit: {command}"


def test_limited_joint_with_unknown_position_gets_no_velocity():
    safety = make(position_limits=[PositionLimit("ee_vz", "ee_z", 0.0, 0.5)])
    command, _ = safety.apply([0.1, 0.1, 0.04], dt=0.0, joint_positions={"ee_x": 0.0})
    np.testing.assert_allclose(command, [0.1, 0.0, 0.04])


def _numpy_reference(safety, last, action, dt, joints):
    """The filter as numpy ufuncs spell it (rate limit, clamp, position limits), for ticks."""
    command = np.array(action, dtype=np.float64).reshape(-1)
    if last is not None and dt > 0:
        step = safety.max_rate * dt
        command = np.minimum(np.maximum(command, last - step), last + step)
    command = np.minimum(np.maximum(command, safety.low), safety.high)
    q = joints.get("ee_x")  # the one position limit: ee_vx while ee_x is in [-0.1, 0.1]
    if q is None or not np.isfinite(q) or (q >= 0.1 and command[0] > 0) or (
            q <= -0.1 and command[0] < 0):
        command[0] = 0.0
    return command


def test_float_arithmetic_gives_the_numpy_ufunc_command_bit_for_bit():
    """Per-tick plain floats: same bits as np.maximum/np.minimum, signed zeros included."""
    rng = np.random.default_rng(0)
    safety = make(max_rate=[2.0, np.inf, 0.5],
                  position_limits=[PositionLimit("ee_vx", "ee_x", -0.1, 0.1)])
    grid = np.array([-0.3, -0.2, -0.0, 0.0, 0.08, 0.2, 0.3])
    last = None
    for tick in range(3000):
        action = (rng.choice(grid, 3) if tick % 2 else rng.normal(0, 0.2, 3)).astype(
            rng.choice([np.float32, np.float64]))
        dt = float(rng.choice([0.0, 0.01, 0.02, 1.0]))
        joints = {"ee_x": float(rng.choice([-0.2, -0.1, 0.0, 0.1, 0.2, np.nan]))} \
            if tick % 5 else {}
        expected = _numpy_reference(safety, last, action, dt, joints)
        command, note = safety.apply(action, dt, joints)
        assert note == "" and command.dtype == np.float64
        assert command.tobytes() == expected.tobytes(), (tick, action, dt, joints)
        last = command.copy()


def test_nan_limits_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="max_rate holds NaN"):
        make(max_rate=[np.nan])
    with pytest.raises(ValueError, match="high holds NaN"):
        make(high=[0.2, np.nan, 0.08])


def test_huge_finite_actions_are_clamped_not_held():
    safety = make()
    command, note = safety.apply(np.array([1e308, 1e308, -1e308]), dt=0.0)  # sum overflows
    assert note == "" and safety.rejected == 0
    np.testing.assert_array_equal(command, [0.2, 0.2, 0.0])
    np.testing.assert_array_equal(safety.last, command)


def test_the_last_command_carries_over_as_the_rate_limits_start():
    safety = make(max_rate=[1.0])
    safety.apply(np.array([0.1, -0.1, 0.04], np.float32), dt=0.0)
    successor = make(max_rate=[1.0])
    successor.last = safety.last                    # as a hot swap or a new limit does
    command, _ = successor.apply([0.2, 0.2, 0.08], dt=0.01)
    np.testing.assert_allclose(command, [np.float32(0.1) + 0.01, np.float32(-0.1) + 0.01,
                                         np.float32(0.04) + 0.01])

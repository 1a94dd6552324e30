"""The per-tick decisions of a policy node, on a fake clock: no ROS, no sleeps.

The policies are real ONNX Runtime sessions on tiny graphs (``tiny_models``).
"""

import math

import pytest

from distill_ros.runtime.control_loop import InputTrigger, LoopStats
from distill_ros.runtime.model_loader import open_policy
from distill_ros.runtime.observation import ObservationAssembler
from distill_ros.runtime.safety import SafetyConfig, SafetyFilter
from distill_ros.runtime.supervisor import ERROR, OK, Supervisor, WARN
from runtime.tiny_models import ACT, HIGH, LOW, tiny_onnx

WATCHDOG_S, PERIOD_S = 0.5, 0.01
JOINTS = {"palm_x": "ee_x", "palm_z": "ee_z"}
HOLD = [0.0, 0.04]   # ee_vx stops, the gripper keeps its initial opening


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Rig:
    """A supervisor wired to a real tiny policy, a fake clock and a list of sent commands."""

    def __init__(self, tmp_path, output="half", **safety):
        self.clock, self.sent, self.statuses = FakeClock(), [], []
        self.inputs = ObservationAssembler(JOINTS, ["obj_x"])
        self.stats = LoopStats(window=100)
        self.sup = Supervisor(self.inputs, self.sent.append, self.clock, WATCHDOG_S,
                              warn_clear_s=1.0, stats=self.stats,
                              on_status=lambda *s: self.statuses.append(s))
        self.policy = open_policy(str(tiny_onnx(tmp_path / f"{output}.onnx", output)), False,
                                  self.inputs)
        self.sup.configure(self.policy, self.filter(**safety), PERIOD_S)
        self.sup.activate()

    def filter(self, **kwargs) -> SafetyFilter:
        settings = dict(names=ACT, low=LOW, high=HIGH, hold_last=["gripper_opening"],
                        initial_hold=[0.0, 0.04])
        return SafetyFilter(SafetyConfig(**{**settings, **kwargs}))

    def feed(self, x=0.2, z=0.1, obj=0.3, joints=True, array=True):
        if joints:
            self.sup.update_joints(["ee_x", "ee_z", "finger"], [x, z, 0.01], "joint_states")
        if array:
            self.sup.update_array(["obj_x"], [obj], "/sim/features")

    def tick(self, seconds=PERIOD_S):
        """Advance the clock one period and tick; return what was sent (or None)."""
        self.clock.advance(seconds)
        before = len(self.sent)
        self.sup.step()
        return self.sent[-1].tolist() if len(self.sent) > before else None


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


def test_fresh_inputs_give_the_policys_command_through_the_limits(rig):
    rig.feed(x=0.2, z=0.1)
    assert rig.tick() == pytest.approx([0.1, 0.05])      # 0.5 * (palm_x, palm_z)
    rig.feed(x=4.0, z=-1.0)
    assert rig.tick() == pytest.approx([0.5, 0.0])       # clamped to the model's limits
    assert rig.sup.status[0] == OK and rig.stats.summary()["latency_p50_ms"] == pytest.approx(10.0)


def test_nothing_is_sent_until_every_input_arrived_and_the_missing_one_is_named(rig):
    rig.feed(array=False)
    assert rig.tick() is None and rig.sup.status[0] == OK   # within the watchdog time
    rig.clock.advance(WATCHDOG_S)
    assert rig.tick() is None
    level, message = rig.sup.status
    assert level == ERROR and "no data yet for ['obj_x']" in message
    rig.feed()
    assert rig.tick() is not None and rig.sup.status == (OK, "running")


def test_stale_inputs_hold_and_trip_the_watchdog_once_then_recover(rig):
    rig.feed()
    rig.tick()
    rig.feed(array=False)        # obj_x stops arriving
    for _ in range(int(WATCHDOG_S / PERIOD_S) - 5):
        assert rig.tick() != HOLD
        rig.feed(array=False)
    rig.clock.advance(0.1)
    held = [rig.tick() for _ in range(5)]
    # the hold: ee_vx stops, the gripper keeps its last command
    assert held == [pytest.approx([0.0, 0.05])] * 5, "stale inputs: the hold at every tick"
    assert rig.sup.status[0] == ERROR and "watchdog" in rig.sup.status[1]
    assert rig.sup.counts.watchdog_trips == 1 and rig.sup.stale
    rig.feed()
    assert rig.tick() == pytest.approx([0.1, 0.05])
    assert rig.sup.status == (OK, "inputs fresh again: running") and not rig.sup.stale


def test_emergency_stop_holds_every_tick_until_cleared(rig):
    rig.feed(z=0.06)
    assert rig.tick() == pytest.approx([0.1, 0.03])
    rig.sup.engage_estop()
    assert rig.sent[-1].tolist() == pytest.approx([0.0, 0.03]), "the hold keeps the opening"
    for _ in range(3):
        rig.feed()
        assert rig.tick() == pytest.approx([0.0, 0.03])
    assert rig.sup.status[0] == ERROR and "emergency stop" in rig.sup.status[1]
    assert rig.sup.clear_estop() and not rig.sup.clear_estop()
    rig.feed()
    assert rig.tick() == pytest.approx([0.1, 0.05])


def test_a_policy_exception_holds_and_errors_until_the_policy_works_again(rig):
    failing = [True]

    def act(obs):
        if failing[0]:
            raise RuntimeError("CUDA error: device lost")
        return rig.policy.act(obs)
    assert rig.sup.swap(rig.policy._replace(act=act), rig.filter())
    rig.feed()
    assert rig.tick() == HOLD and rig.tick() == HOLD
    assert rig.sup.status[0] == ERROR and "device lost" in rig.sup.status[1]
    assert rig.sup.counts.policy_errors == 2
    failing[0] = False
    assert rig.tick() == pytest.approx([0.1, 0.05]) and rig.sup.status == (OK, "running")


def test_a_nan_action_is_held_and_blamed_on_the_policy(tmp_path):
    rig = Rig(tmp_path, output="nan")
    rig.feed()
    assert rig.tick() == HOLD
    assert rig.sup.status == (WARN, "non-finite action from the policy replaced by a hold")
    assert rig.sup.counts.nan_actions == 1 and rig.sup.counts.nan_inputs == 0


def test_a_nan_input_is_named_held_and_its_warning_clears_after_good_ticks(rig):
    """Issue 16 item 7: the WARN blamed the action and never cleared."""
    rig.feed()
    rig.tick()
    rig.feed(x=math.nan)
    assert rig.tick() == pytest.approx([0.0, 0.05])
    level, message = rig.sup.status
    assert level == WARN and "non-finite input palm_x (joint ee_x)" in message, message
    assert "action" not in message
    assert rig.sup.counts.nan_inputs == 1 and rig.sup.counts.nan_actions == 0
    good = []
    for _ in range(50):                               # 0.5 s of good inputs
        rig.feed()
        good.append(rig.tick())
    assert all(g == pytest.approx([0.1, 0.05]) for g in good)
    assert rig.sup.status[0] == WARN, "a warning should stay visible for warn_clear_s"
    for _ in range(60):                               # past 1 s since the NaN
        rig.feed()
        rig.tick()
    assert rig.sup.status == (OK, "running")
    assert [s[0] for s in rig.statuses] == [WARN, OK]


@pytest.mark.parametrize("message, names, values, why", [
    ("joints", ["ee_x", "ee_z", "finger", "wrist", "elbow"], [0.1, 0.2],
     "joint_states: 5 joint names but 2 positions"),
    ("array", ["", ""], [0.3, 0.4], "/sim/features: 2 values but 0 labels"),
    ("array", ["obj_x"], [0.3, 0.4], "/sim/features: 2 values but 1 labels"),
])
def test_malformed_inputs_are_dropped_and_reported_by_source(rig, message, names, values,
                                                             why):
    rig.feed(x=0.2, obj=0.3)
    rig.tick()
    if message == "joints":
        stored = rig.sup.update_joints(names, values, "joint_states")
    else:
        stored = rig.sup.update_array(names, values, "/sim/features")
    assert not stored
    level, text = rig.sup.status
    assert level == WARN and why in text, text
    assert rig.sup.counts.inputs_rejected == 1
    obs, _, _ = rig.policy.inputs.read()
    assert obs.tolist() == pytest.approx([0.2, 0.1, 0.3]), "a malformed message was stored"


def test_a_joint_state_without_positions_for_other_joints_is_not_an_error(rig):
    assert rig.sup.update_joints(["wheel_left", "wheel_right"], [], "joint_states")
    assert rig.sup.status[0] == OK and rig.sup.counts.inputs_rejected == 0


def test_new_limits_apply_to_the_next_command_and_the_rate_limit_continues(rig):
    rig.feed(x=0.6)
    assert rig.tick() == pytest.approx([0.3, 0.05])
    rig.sup.set_safety(rig.filter(high=[0.2, 0.08], max_rate=[5.0]))
    assert rig.tick() == pytest.approx([0.2, 0.05])   # command_high: next command
    rig.feed(x=-0.6)
    assert rig.tick() == pytest.approx([0.15, 0.05])  # 5/s * 10 ms from the last command


def test_a_swap_keeps_the_rate_limit_and_a_swap_after_free_is_dropped(rig, tmp_path):
    rig.feed()
    rig.tick()
    new = open_policy(str(tiny_onnx(tmp_path / "new.onnx")), False, rig.inputs, ACT)
    assert rig.sup.swap(new, rig.filter(max_rate=[1.0]))
    assert rig.sup.policy is new and rig.sup.safety.last.tolist() == pytest.approx([0.1, 0.05])
    rig.sup.free()
    assert not rig.sup.swap(new, rig.filter()) and rig.sup.policy is None
    assert rig.tick() is None


def test_clearing_an_e_stop_that_was_not_engaged_keeps_another_error(rig):
    rig.feed(array=False)
    rig.clock.advance(WATCHDOG_S)
    rig.tick()
    assert rig.sup.status[0] == ERROR
    assert not rig.sup.clear_estop() and rig.sup.status[0] == ERROR


def test_a_warning_never_hides_an_error(rig):
    rig.sup.engage_estop()
    rig.sup.warn("model_path /m/bad.onnx rejected")
    assert rig.sup.status[0] == ERROR and "emergency stop" in rig.sup.status[1]


def test_watch_holds_stale_inputs_without_running_the_policy(rig):
    rig.feed()
    rig.sup.watch()
    assert rig.sent == [], "fresh inputs: the watchdog sends nothing"
    rig.clock.advance(WATCHDOG_S + 0.01)
    rig.sup.watch()
    assert [c.tolist() for c in rig.sent] == [HOLD] and rig.sup.counts.watchdog_trips == 1


def test_input_trigger_honours_its_minimum_period_and_counts_overruns():
    clock, calls, stats = FakeClock(), [], LoopStats(window=10)

    def tick():
        calls.append(clock())
        clock.advance(0.003 if len(calls) == 3 else 0.0001)   # the third compute is slow
    trigger = InputTrigger(tick, stats, period_s=0.002, min_period_s=0.001, clock=clock)
    ran = []
    for gap in (0.0, 0.002, 0.0005, 0.002, 0.002):
        clock.advance(gap)
        ran.append(trigger())
    assert ran == [True, True, False, True, True]
    assert len(calls) == 4 and stats.overruns == 1 and stats.ticks == 4


def test_the_send_is_timed_apart_from_the_rest_of_the_compute(tmp_path):
    """Diagnostics split a compute into the command's send and the node's own work."""
    rig = Rig(tmp_path)

    def slow_send(command):  # the middleware's write takes 3 ms
        rig.sent.append(command)
        rig.clock.advance(0.003)
    rig.sup.send = slow_send
    trigger = InputTrigger(rig.sup.step, rig.stats, period_s=0.1, min_period_s=0.0,
                           clock=rig.clock)
    rig.feed()
    rig.clock.advance(0.005)   # inputs 5 ms old when the compute starts
    assert trigger() and len(rig.sent) == 1
    summary = rig.stats.summary()
    assert summary["send_p50_ms"] == pytest.approx(3.0)
    assert summary["compute_p50_ms"] == pytest.approx(3.0)   # the fake clock: only the send
    assert summary["compute_less_send_p50_ms"] == pytest.approx(0.0, abs=1e-9)
    assert summary["latency_p50_ms"] == pytest.approx(8.0), "obs->command ends after the send"


def test_a_grouped_policy_runs_from_a_cloud_a_masked_command_and_a_joint(tmp_path):
    """Issue 9: points and command groups arrive whole; vector groups by element name."""
    from distill_ros.runtime.observation import command_from_arrays, points_from_cloud
    from runtime.tiny_models import cloud_parts, tiny_grouped_onnx

    rig = Rig(tmp_path)
    policy = open_policy(str(tiny_grouped_onnx(tmp_path / "g.onnx")), False, rig.inputs,
                         store=rig.sup.groups, sourced=["points", "cmd"])
    assert rig.sup.swap(policy, rig.filter())
    groups = policy.runner.groups
    rows = [[0.1, 0.2, 0.0, 1.0], [0.3, -0.2, 0.5, 0.0]]          # 2 points, repeated to 8
    assert rig.sup.update_group("points", lambda: {"points": points_from_cloud(
        groups.group("points"), **cloud_parts(rows))}, "/camera/points")
    rig.sup.update_joints(["ee_x"], [0.7], "joint_states")
    assert rig.tick() is None, "the command group never arrived: nothing is sent"
    assert rig.sup.update_group("cmd", lambda: command_from_arrays(
        groups.group("cmd"), [0.05, 0.01, 9.0], [1, 0, 1]), "/cmd/values")
    # mean (x, y) = (0.2, 0.0); masked command adds (0.05, 0.0)
    assert rig.tick() == pytest.approx([0.25, 0.0], abs=1e-6)

    bad = rig.sup.update_group("cmd", lambda: command_from_arrays(
        groups.group("cmd"), [0.05, 0.01], [1, 0]), "/cmd/values")
    assert not bad and "/cmd/values: group 'cmd': command has 2 values" in rig.sup.status[1]


def test_a_grouped_policy_needs_a_source_for_each_whole_group(tmp_path):
    from runtime.tiny_models import tiny_grouped_onnx

    rig = Rig(tmp_path)
    with pytest.raises(ValueError, match="'cmd' \\(command\\) has no source"):
        open_policy(str(tiny_grouped_onnx(tmp_path / "g.onnx")), False, rig.inputs,
                    store=rig.sup.groups, sourced=["points"])

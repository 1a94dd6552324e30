"""motion_command in its own process: the clip's masked command, following the sim's clock.

A live ``mode`` change changes the mask on the topic (and zeroes the values it hides); a bad
mode is refused with the choices; ``clip`` switches the clip; the own clock runs at ``speed``.
"""

import numpy as np
import pytest

from conftest import REPO

F64 = "std_msgs/msg/Float64MultiArray"
PARAMS = str(REPO / "config" / "motion_command_params.yaml")
NODE = "/motion_command"


@pytest.fixture(scope="module")
def kin():
    from distill_ros.tasks.humanoid.character import KinematicHumanoid

    made = KinematicHumanoid()
    yield made
    made.close()


def expected(kin, clip: str, clip_time: float, mode: str):
    """The values and mask the node should send: computed here from the same clip."""
    from distill_ros.tasks.humanoid.commands import apply_mask, CommandSpace, MODES
    from distill_ros.tasks.humanoid.env import reference_frames
    from distill_ros.tasks.humanoid.motion import MotionClip

    space = CommandSpace((1,))
    mask = space.mask(MODES[mode])
    frames = reference_frames(MotionClip.named(clip), kin, clip_time, 1, 30)
    return apply_mask(space.compute(frames), mask), mask, space.names()


def _send_until(pub, time_msg, recorder, predicate, what, timeout_s=30.0):
    """Publish the sim's features until ``recorder`` holds a message meeting ``predicate``."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pub.publish(time_msg)
        time.sleep(0.05)
        got = [m for _, m in recorder.since(0) if predicate(m)]
        if got:
            return got[-1]
    raise AssertionError(f"no {what} within {timeout_s} s")


def test_sim_clock_command_follows_clip_time_and_a_mode_switch_changes_the_mask(
        tester, start_node, kin):
    from distill_ros.nodes.command_output import array_labels, labelled_array

    values = tester.record(F64, "/motion_command/values")
    masks = tester.record(F64, "/motion_command/mask")
    features = tester.publisher(F64, "/sim_robot/features", tester.ros.SENSOR_DATA)
    proc = start_node("motion_command", "--params-file", PARAMS)

    def at(t):
        return labelled_array(["phase", "root_height", "clip_time"], [0.3, 0.8, t])
    want, want_mask, labels = expected(kin, "walk", 0.5, "full")
    got = _send_until(features, at(0.5), values,
                      lambda m: np.allclose(m.data, want, atol=1e-6), "full walk command at "
                      f"0.5 s\n{proc.log()}")
    assert array_labels(got) == labels and labels[0] == "+1/keypoint/head[0]"
    _, full = masks.wait_for(lambda m: True, 0, 10.0, "mask")
    assert array_labels(full) == labels and list(full.data) == want_mask.tolist()
    assert min(want_mask) == 1.0   # full: everything commanded

    result = tester.set_param(NODE, "mode", "upper_body")
    assert result.successful, result.reason
    want, want_mask, _ = expected(kin, "walk", 0.7, "upper_body")
    assert 0 < want_mask.sum() < len(want_mask)
    mask = _send_until(features, at(0.7), masks,
                       lambda m: list(m.data) == want_mask.tolist(), "upper-body mask")
    got = _send_until(features, at(0.7), values,
                      lambda m: np.allclose(m.data, want, atol=1e-6), "upper-body values")
    hidden = np.asarray(mask.data) == 0
    assert np.all(np.asarray(got.data)[hidden] == 0.0)   # what the mask hides is zero
    lower_knee = labels.index("+1/joint/right_knee[0]")
    assert hidden[lower_knee] and not hidden[labels.index("+1/joint/right_elbow[0]")]

    refused = tester.set_param(NODE, "mode", "cartwheel")
    assert not refused.successful and "head_hands" in refused.reason, refused.reason
    assert tester.get_param(NODE, "mode") == "upper_body"

    assert tester.set_param(NODE, "clip", "jump").successful
    want, _, _ = expected(kin, "jump", 0.7, "upper_body")
    _send_until(features, at(0.7), values, lambda m: np.allclose(m.data, want, atol=1e-6),
                "jump command")
    bad_clip = tester.set_param(NODE, "clip", "moonwalk")
    assert not bad_clip.successful and "walk" in bad_clip.reason, bad_clip.reason


def test_own_clock_plays_at_speed_and_takes_mode_changes(tester, start_node):
    import time

    diagnostics = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    masks = tester.record(F64, "/motion_command/mask")
    proc = start_node("motion_command", "--params-file", PARAMS, "-p", "clock:=own",
                      "-p", "speed:=2.0", "-p", "start_time:=0.25", "-p", "mode:=head_hands")

    def clip_times(after):
        out = []
        for stamp, msg in diagnostics.since(after):
            for status in msg.status:
                if status.name == "motion_command: clip":
                    values = {kv.key: kv.value for kv in status.values}
                    out.append((stamp, float(values["clip_time_s"]), values["mode"]))
        return out
    deadline = time.monotonic() + 30.0
    while len(clip_times(0)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = clip_times(0)
    assert len(seen) >= 3, f"no diagnostics from motion_command\n{proc.log()}"
    (t0, c0, mode), (t1, c1, _) = seen[-2], seen[-1]
    assert mode == "head_hands" and c0 > 0.25
    # clip seconds per second of arrival time: 2 (speed), within the arrival jitter
    assert (c1 - c0) / (t1 - t0) == pytest.approx(2.0, rel=0.35), seen
    head_hands = masks.wait_for(lambda m: True, 0, 10.0, "mask")[1].data
    assert 0 < sum(head_hands) < len(head_hands)
    assert tester.set_param(NODE, "mode", "full").successful
    masks.wait_for(lambda m: min(m.data) == 1.0, time.monotonic(), 10.0, "full mask")
    assert not tester.set_param(NODE, "clock", "sim").successful   # read-only after start

"""policy_inference in its own process, driven over loopback DDS from this one.

Inputs come from :class:`FakeRobot` (this process), so a test can stop them; commands,
diagnostics, services, parameters and lifecycle transitions are all cross-process.
"""

import hashlib
import math
import os
import time

import numpy as np
import pytest

from nodes.conftest import onnx_like, OUTPUT, PARAMS
from runtime.test_realtime import fifo_allowed

NODE = "/policy_inference"
F64 = "std_msgs/msg/Float64MultiArray"
DIAG = "diagnostic_msgs/msg/DiagnosticArray"
TRIGGER = "std_srvs/srv/Trigger"
STATUS = "policy_inference: control loop"
PERIOD_S = 1 / 30
ARRAY_OBS = ["finger_opening", "obj_rel_x", "obj_rel_y", "obj_rel_z", "obj_x", "obj_y",
             "obj_z", "obj_half_x", "obj_half_y", "obj_half_z", "contact_left", "contact_right"]


def _start(start_node, model, *overrides):
    args = ["--params-file", str(PARAMS), "-p", f"model_path:={model}"]
    for item in overrides:
        args += ["-p", item]
    return start_node("policy_inference", *args)


def _status(msg):
    """Our status in a DiagnosticArray as (level as an int, message, values), or None."""
    for status in msg.status:
        if status.name == STATUS:   # level is a byte field: b'\x02' on both backends
            return ord(status.level), status.message, {kv.key: kv.value for kv in status.values}
    return None


def _is_hold(msg, opening=None):
    velocities_zero = list(msg.data[:3]) == [0.0, 0.0, 0.0]
    return velocities_zero and (opening is None or msg.data[3] == opening)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_lifecycle_transitions_and_configure_refuses_unsourced_observations(
        tester, start_node, fake_robot, student_onnx):
    commands = tester.record(F64, OUTPUT)
    proc = _start(start_node, student_onnx, "autostart:=false", "array_obs:=[finger_opening]")
    assert tester.state(NODE) == "unconfigured"
    assert not tester.transition(NODE, "configure"), "configured with unsourced observations"
    assert tester.state(NODE) == "unconfigured"
    assert "contact_right" in proc.log(), f"missing names not reported:\n{proc.log()}"

    assert tester.set_param(NODE, "array_obs", ARRAY_OBS).successful
    assert tester.transition(NODE, "configure"), proc.log()
    assert tester.state(NODE) == "inactive"
    quiet = time.monotonic()
    time.sleep(0.5)
    assert not commands.since(quiet), "an inactive node published commands"

    assert tester.transition(NODE, "activate")
    assert tester.state(NODE) == "active"
    first, _ = commands.wait_for(lambda m: True, quiet, 10.0, "command after activate")
    time.sleep(1.0)
    sent = [m for _, m in commands.since(first)]
    assert len(sent) >= 15, f"{len(sent)} commands in 1 s at 30 Hz"
    for msg in sent:
        assert [d.label for d in msg.layout.dim] == ["ee_vx", "ee_vy", "ee_vz",
                                                     "gripper_opening"]
        assert all(math.isfinite(v) for v in msg.data), msg.data
        assert all(-0.9 <= v <= 0.9 for v in msg.data[:3]) and 0 <= msg.data[3] <= 0.09

    assert tester.transition(NODE, "deactivate")
    stopped = time.monotonic()
    time.sleep(0.4)
    assert _is_hold(commands.items[-1][1]), f"last command is no hold: {commands.items[-1][1]}"
    assert not commands.since(stopped + 0.2), "commands after deactivate"
    assert tester.state(NODE) == "inactive"
    assert tester.transition(NODE, "cleanup")
    assert tester.state(NODE) == "unconfigured"
    assert not tester.transition(NODE, "activate"), "activated without a model"
    assert tester.transition(NODE, "shutdown")
    assert tester.state(NODE) == "finalized"


def test_input_triggered_mode_computes_per_input_and_its_watchdog_holds(
        tester, start_node, fake_robot, student_onnx):
    """trigger:=input: one command per joint_states (30 Hz), not per rate_hz (500 Hz)."""
    timeout_s, slack_s = 0.3, 0.7  # slack: a loaded 2-core machine
    commands = tester.record(F64, OUTPUT)
    diags = tester.record(DIAG, "/diagnostics")
    proc = _start(start_node, student_onnx, "trigger:=input", "rate_hz:=500.0",
                  f"watchdog_timeout_s:={timeout_s}", "label_commands:=false")
    first, msg = commands.wait_for(lambda m: not _is_hold(m), 0, 20.0,
                                   f"policy command\n{proc.log()}")
    assert len(msg.data) == 4 and not msg.layout.dim, "label_commands:=false: data only"
    time.sleep(1.0)
    count = len(commands.since(first))
    assert 15 <= count <= 45, f"{count} commands in 1 s from 30 Hz inputs"

    fake_robot.send_joint_states = False
    stopped = time.monotonic()
    held, _ = commands.wait_for(_is_hold, stopped, 5.0, "hold command")
    errored, msg = diags.wait_for(lambda m: (_status(m) or (0,))[0] == 2, stopped, 5.0,
                                  "diagnostics ERROR")
    assert held - stopped < timeout_s + slack_s, f"hold after {held - stopped:.3f} s"
    assert "watchdog" in _status(msg)[1]
    fake_robot.send_joint_states = True
    commands.wait_for(lambda m: not _is_hold(m), time.monotonic(), 5.0, "policy command again")


def test_a_nan_input_is_named_on_diagnostics_and_the_warning_clears(
        tester, start_node, fake_robot, student_onnx):
    """Issue 16 item 7: the WARN blamed the action, never cleared; bad messages were silent."""
    commands = tester.record(F64, OUTPUT)
    diags = tester.record(DIAG, "/diagnostics")
    _start(start_node, student_onnx)
    commands.wait_for(lambda m: not _is_hold(m), 0, 20.0, "policy command")
    good = fake_robot.joints["ee_x"]
    fake_robot.joints["ee_x"] = math.nan
    _, msg = diags.wait_for(lambda m: _status(m) and _status(m)[0] == 1, 0, 5.0, "a WARN")
    fake_robot.joints["ee_x"] = good
    healed = time.monotonic()
    level, message, values = _status(msg)
    assert "non-finite input palm_x (joint ee_x)" in message and "action" not in message
    assert int(values["nan_inputs"]) >= 1 and values["nan_actions"] == "0"
    diags.wait_for(lambda m: _status(m) and _status(m)[0] == 0, healed, 5.0, "OK again")

    joint_states = tester.publisher("sensor_msgs/msg/JointState", "joint_states",
                                    tester.ros.SENSOR_DATA)
    bad = tester.ros.get_interface("sensor_msgs/msg/JointState")(
        name=["ee_x", "ee_y", "ee_z", "finger_left", "finger_right"], position=[0.0, 0.1])
    sent, msg = time.monotonic(), None
    while msg is None and time.monotonic() < sent + 10.0:  # best effort: until discovered
        joint_states.publish(bad)
        time.sleep(0.05)
        msg = next((m for _, m in diags.since(sent) if _status(m) and _status(m)[0] == 1),
                   None)
    assert msg is not None, "no WARN about the malformed JointState"
    assert "joint_states: 5 joint names but 2 positions" in _status(msg)[1], _status(msg)
    assert int(_status(msg)[2]["inputs_rejected"]) >= 1


def test_limits_apply_live_and_configure_time_parameters_are_refused_with_a_reason(
        tester, start_node, fake_robot, student_onnx):
    """Issue 14 item 2: command_high was accepted and ignored until the next configure."""
    commands = tester.record(F64, OUTPUT)
    _start(start_node, student_onnx)
    commands.wait_for(lambda m: max(m.data) > 0.01, 0, 20.0, "a command above 0.01")
    assert tester.set_param(NODE, "command_high", [0.01]).successful
    changed = time.monotonic()
    # ~one DDS hop of grace: a command published before the reply may still be in flight
    commands.wait_for(lambda m: True, changed + 0.05, 5.0, "command after the set")
    after = [m for _, m in commands.since(changed + 0.05)]
    assert after and all(max(m.data) <= 0.01 for m in after), [list(m.data) for m in after]

    assert tester.set_param(NODE, "rate_hz", 90.0).successful   # from the model's 30 Hz
    faster = time.monotonic()
    time.sleep(1.0)
    count = len(commands.since(faster + 0.1))
    assert count >= 60, f"{count} commands in 0.9 s after rate_hz:=90"

    for name, value in (("joint_obs", ["palm_x:ee_x"]), ("trigger", "input")):
        result = tester.set_param(NODE, name, value)
        assert not result.successful, f"{name} accepted while configured"
        assert f"{name} cannot change while configured" in result.reason, result.reason
    result = tester.set_param(NODE, "output_topic", "/elsewhere")
    assert not result.successful and "output_topic" in result.reason, result.reason
    result = tester.set_param(NODE, "command_high", [0.1, 0.2])
    assert not result.successful and "command_high needs 1 or 4 values" in result.reason

    rate, topic = tester.call("rcl_interfaces/srv/DescribeParameters",
                              f"{NODE}/describe_parameters",
                              names=["rate_hz", "output_topic"]).descriptors
    assert "control rate in Hz" in rate.description and "applies at once" in rate.description
    assert rate.floating_point_range[0].to_value == 1e4 and not rate.read_only
    assert topic.read_only and "read-only after start" in topic.description


def _threads(pid):
    """Each thread of process ``pid`` as (scheduling policy, rt priority, allowed CPUs)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # from field 3 (state) on
        out.append((int(fields[38]), int(fields[37]), os.sched_getaffinity(int(tid))))
    return out


def test_thread_priority_and_cpu_affinity_schedule_the_compute_thread_as_asked(
        tester, start_node, fake_robot, student_onnx):
    """As ros2_control's thread_priority and cpu_affinity: FIFO compute thread, pinned node."""
    cpu, allowed = max(os.sched_getaffinity(0)), os.sched_getaffinity(0)
    commands = tester.record(F64, OUTPUT)
    diags = tester.record(DIAG, "/diagnostics")
    proc = _start(start_node, student_onnx, "trigger:=input", "thread_priority:=30",
                  f"cpu_affinity:=[{cpu}]")
    started, _ = commands.wait_for(lambda m: not _is_hold(m), 0, 20.0, "policy command")
    _, msg = diags.wait_for(  # one sent before the first compute may arrive after it
        lambda m: "pending" not in (_status(m) or (0, "", {}))[2].get("scheduling", "pending"),
        started, 5.0, "diagnostics after a compute")
    scheduling, threads = _status(msg)[2]["scheduling"], _threads(proc.proc.pid)
    assert all(cpus == {cpu} for _, _, cpus in threads), threads
    assert scheduling.endswith(f"cpus [{cpu}]"), scheduling
    fifo = [t for t in threads if t[0] == os.SCHED_FIFO]
    if fifo_allowed():
        assert [priority for _, priority, _ in fifo] == [30], threads
        assert scheduling.startswith("SCHED_FIFO 30 (thread"), scheduling
    else:  # the node runs on at the default priority and says why
        assert not fifo and "refused, needs CAP_SYS_NICE" in scheduling, scheduling
    result = tester.set_param(NODE, "thread_priority", 10)
    assert not result.successful and "cannot change while configured" in result.reason

    assert tester.transition(NODE, "deactivate") and tester.transition(NODE, "cleanup")
    threads = _threads(proc.proc.pid)
    assert not [t for t in threads if t[0] == os.SCHED_FIFO], threads
    assert all(cpus == allowed for _, _, cpus in threads), threads
    assert tester.set_param(NODE, "cpu_affinity", [4096]).successful
    assert not tester.transition(NODE, "configure")
    assert "cpu_affinity [4096]: this process may only run on CPUs" in proc.log(), proc.log()


def test_emergency_stop_holds_until_cleared(tester, start_node, fake_robot, student_onnx):
    commands = tester.record(F64, OUTPUT)
    diags = tester.record(DIAG, "/diagnostics")
    _start(start_node, student_onnx)
    commands.wait_for(lambda m: not _is_hold(m), 0, 20.0, "policy command")
    reply = tester.call(TRIGGER, f"{NODE}/emergency_stop")
    stopped = time.monotonic()
    assert reply.success, reply.message
    diags.wait_for(lambda m: (_status(m) or (0,))[0] == 2 and "emergency" in _status(m)[1],
                   stopped - 0.5, 5.0, "emergency stop ERROR on /diagnostics")
    time.sleep(0.5)
    after = commands.since(stopped + 0.1)
    assert after and all(_is_hold(m) for _, m in after), "commands moved during an e-stop"

    reply = tester.call(TRIGGER, f"{NODE}/clear_emergency_stop")
    assert reply.success and "cleared" in reply.message, reply.message
    commands.wait_for(lambda m: not _is_hold(m), time.monotonic(), 5.0, "command after clear")


def test_parameters_reject_with_reason_and_hot_swap_without_a_missed_tick(
        tester, start_node, fake_robot, student_onnx, tmp_path):
    commands = tester.record(F64, OUTPUT)
    diags = tester.record(DIAG, "/diagnostics")
    _start(start_node, student_onnx)
    commands.wait_for(lambda m: not _is_hold(m), 0, 20.0, "policy command")
    sha = _sha(student_onnx)
    diags.wait_for(lambda m: _status(m) and _status(m)[2]["model_sha256"] == sha, 0, 5.0,
                   "model hash on /diagnostics")

    result = tester.set_param(NODE, "watchdog_timeout_s", -1.0)
    assert not result.successful and "watchdog_timeout_s out of range" in result.reason, result
    result = tester.set_param(NODE, "watchdog_timeout_s", "soon")
    assert not result.successful and "type" in result.reason, result
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(student_onnx.read_bytes()[:300])
    doubles = onnx_like(student_onnx, tmp_path / "doubles.onnx", "float64")
    for path, why in ((bad, "truncated"), (tmp_path / "none.onnx", "does not exist"),
                      (doubles, "cannot be loaded")):
        result = tester.set_param(NODE, "model_path", str(path))
        assert not result.successful, f"{path.name} accepted"
        assert why in result.reason and str(student_onnx) in result.reason, result.reason
    checked = time.monotonic()
    commands.wait_for(lambda m: not _is_hold(m), checked, 5.0, "old model still running")

    second = onnx_like(student_onnx, tmp_path / "second.onnx", "copy")
    _, msg = diags.wait_for(lambda m: _status(m) is not None, checked, 5.0, "diagnostics")
    overruns = float(_status(msg)[2]["overruns"])
    swapped = time.monotonic()
    result = tester.set_param(NODE, "model_path", str(second))
    assert result.successful, result.reason
    _, msg = diags.wait_for(lambda m: _status(m) and _status(m)[2]["model_sha256"] == _sha(second),
                            swapped, 5.0, "new model hash on /diagnostics")
    assert float(_status(msg)[2]["overruns"]) == overruns, "the control loop missed a tick"
    assert _status(msg)[2]["watchdog_trips"] == "0", "the swap starved the inputs"
    times = [t for t, _ in commands.since(swapped - 0.5) if t < swapped + 1.0]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 30 and max(gaps) < 4 * PERIOD_S, f"command gaps {max(gaps):.3f} s"


def test_a_slow_model_load_finishes_in_the_background_or_reverts(
        tester, start_node, fake_robot, student_onnx, tmp_path):
    """swap_wait_s:=0 sends every load to the background, as a TensorRT build would."""
    commands = tester.record(F64, OUTPUT)
    diags = tester.record(DIAG, "/diagnostics")
    _start(start_node, student_onnx, "swap_wait_s:=0.0")
    commands.wait_for(lambda m: not _is_hold(m), 0, 20.0, "policy command")

    doubles = onnx_like(student_onnx, tmp_path / "doubles.onnx", "float64")
    asked = time.monotonic()
    result = tester.set_param(NODE, "model_path", str(doubles))
    assert result.successful, f"the call must not wait for the load: {result.reason}"
    _, msg = diags.wait_for(lambda m: _status(m) and "rejected" in _status(m)[1], asked, 10.0,
                            "background rejection on /diagnostics")
    level, message, values = _status(msg)
    assert level == 1 and "cannot be loaded" in message and str(student_onnx) in message
    assert values["models_rejected"] == "1" and values["model_sha256"] == _sha(student_onnx)
    assert tester.get_param(NODE, "model_path") == str(student_onnx), "model_path not reverted"

    second = onnx_like(student_onnx, tmp_path / "second.onnx", "copy")
    swapped = time.monotonic()
    assert tester.set_param(NODE, "model_path", str(second)).successful
    _, msg = diags.wait_for(lambda m: _status(m) and _status(m)[2]["model_sha256"] == _sha(second),
                            swapped, 10.0, "background swap on /diagnostics")
    assert _status(msg)[2]["model_loading"] == "" and _status(msg)[2]["watchdog_trips"] == "0"
    assert tester.get_param(NODE, "model_path") == str(second)
    commands.wait_for(lambda m: not _is_hold(m), swapped, 5.0, "commands from the new model")


def test_joint_trajectory_output_maps_commands_to_joints(tester, start_node, fake_robot,
                                                         student_onnx):
    joints = ["slide_x", "slide_y", "slide_z", "gripper"]
    trajectories = tester.record("trajectory_msgs/msg/JointTrajectory", "/arm_controller/cmd")
    proc = _start(start_node, student_onnx, "output_type:=joint_trajectory",
                  "output_topic:=/arm_controller/cmd", "trajectory_field:=velocities",
                  f"trajectory_joints:=[{','.join(joints)}]")
    _, msg = trajectories.wait_for(lambda m: True, 0, 20.0, f"a trajectory\n{proc.log()}")
    assert list(msg.joint_names) == joints
    (point,) = msg.points
    assert len(point.velocities) == 4 and not point.positions
    assert all(math.isfinite(v) for v in point.velocities)
    period_ns = point.time_from_start.sec * 10**9 + point.time_from_start.nanosec
    assert abs(period_ns - 10**9 / 30) < 1e6, period_ns


def test_a_grouped_policy_runs_from_a_point_cloud_and_a_masked_command(
        tester, start_node, tmp_path):
    """Issue 9: points from sensor_msgs/PointCloud2, a command from a values+mask pair."""
    from runtime.tiny_models import cloud_parts, tiny_grouped_onnx

    ros = tester.ros
    model = tiny_grouped_onnx(tmp_path / "grouped.onnx")
    commands = tester.record(F64, OUTPUT)
    proc = start_node("policy_inference", "-p", f"model_path:={model}", "-p",
                      "autostart:=true", "-p", "joint_obs:=[palm_x:ee_x]", "-p",
                      "points_groups:=[points:/camera/points]", "-p",
                      "command_groups:=[cmd:/cmd/values:/cmd/mask]")
    cloud_pub = tester.publisher("sensor_msgs/msg/PointCloud2", "/camera/points",
                                 ros.SENSOR_DATA)
    values_pub = tester.publisher(F64, "/cmd/values", ros.SENSOR_DATA)
    mask_pub = tester.publisher(F64, "/cmd/mask", ros.SENSOR_DATA)
    joints_pub = tester.publisher("sensor_msgs/msg/JointState", "joint_states",
                                  ros.SENSOR_DATA)
    parts = cloud_parts([[0.1, 0.2, 0.0, 1.0], [0.3, -0.2, 0.5, 0.0]])
    field = ros.get_interface("sensor_msgs/msg/PointField")
    cloud = ros.get_interface("sensor_msgs/msg/PointCloud2")(
        fields=[field(**f) for f in parts.pop("fields")], **parts)
    array = ros.get_interface(F64)
    joint_state = ros.get_interface("sensor_msgs/msg/JointState")(
        name=["ee_x"], position=[0.7])
    deadline, got = time.monotonic() + 30.0, None
    while got is None and time.monotonic() < deadline:
        cloud_pub.publish(cloud)
        values_pub.publish(array(data=[0.05, 0.03, 9.0]))
        mask_pub.publish(array(data=[1.0, 1.0, 0.0]))
        joints_pub.publish(joint_state)
        time.sleep(0.02)
        got = next((m for _, m in commands.since(0) if abs(m.data[0]) > 1e-9), None)
    assert got is not None, f"no policy command\n{proc.log()}"
    # mean (x, y) of the cloud (0.2, 0.0) + the masked command (0.05, 0.03)
    assert list(got.data) == [pytest.approx(0.25, abs=1e-6), pytest.approx(0.03, abs=1e-6)]


def test_a_toy_student_runs_in_the_node_from_a_cloud_and_a_masked_command(
        tester, start_node, tmp_path):
    """Issue 9 end to end: a toy points + command student in the node gives its ONNX action.

    Trained on the toy family and exported, then fed a PointCloud2 and a values/mask pair
    from another process.
    """
    from distill_ros.runtime.onnx_policy import OnnxPolicy
    from distill_ros.tasks.toy import TASKS, ToyEnv
    from runtime.tiny_models import cloud_parts
    from runtime.toy_student import train_toy_student

    trained = train_toy_student(tmp_path, epochs=3)
    assert trained["parity"]["max_abs_diff_real"] <= 1e-4
    env = ToyEnv(TASKS[1], groups=("points", "command"), mask_prob=0.5)
    o, _ = env.reset(seed=11)
    expected = OnnxPolicy(trained["path"], want_gpu=False).act(o)
    assert np.all(np.isfinite(expected)) and np.any(np.abs(expected) > 1e-3)

    ros = tester.ros
    commands = tester.record(F64, OUTPUT)
    proc = start_node("policy_inference", "-p", f"model_path:={trained['path']}", "-p",
                      "autostart:=true", "-p", "points_groups:=[points:/toy/points]", "-p",
                      "command_groups:=[command:/toy/goal:/toy/goal_mask]")
    cloud_pub = tester.publisher("sensor_msgs/msg/PointCloud2", "/toy/points", ros.SENSOR_DATA)
    values_pub = tester.publisher(F64, "/toy/goal", ros.SENSOR_DATA)
    mask_pub = tester.publisher(F64, "/toy/goal_mask", ros.SENSOR_DATA)
    parts = cloud_parts(o["points"])
    field = ros.get_interface("sensor_msgs/msg/PointField")
    cloud = ros.get_interface("sensor_msgs/msg/PointCloud2")(
        fields=[field(**f) for f in parts.pop("fields")], **parts)
    array = ros.get_interface(F64)
    deadline, got = time.monotonic() + 30.0, None
    while got is None and time.monotonic() < deadline:
        cloud_pub.publish(cloud)
        values_pub.publish(array(data=[float(v) for v in o["command"]]))
        mask_pub.publish(array(data=[float(v) for v in o["command_mask"]]))
        time.sleep(0.02)
        got = next((m for _, m in commands.since(0) if np.any(np.abs(m.data) > 1e-9)), None)
    assert got is not None, f"no policy command\n{proc.log()}"
    assert np.allclose(got.data, expected, atol=1e-5), f"node {list(got.data)} vs {expected}"

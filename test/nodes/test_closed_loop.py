"""Closed loop across processes: sim_robot <-> policy_inference (the exported student)."""

import time

from nodes.conftest import PARAMS, SIM_PARAMS

EPISODE_S = 15.0   # the student lifts the cube in ~2 s of sim time; slack for a loaded machine
TOTAL_S = 60.0


def test_student_grasps_the_default_object_through_ros_topics(tester, start_node, student_onnx):
    success = tester.record("std_msgs/msg/Bool", "/sim_robot/success")
    joint_states = tester.record("sensor_msgs/msg/JointState", "/joint_states")
    commands = tester.record("std_msgs/msg/Float64MultiArray",
                             "/forward_command_controller/commands")
    sim = start_node("sim_robot", "--params-file", str(SIM_PARAMS))
    policy = start_node("policy_inference", "--params-file", str(PARAMS),
                        "-p", f"model_path:={student_onnx}")
    started = time.monotonic()
    episode_start, resets = started, 0
    while time.monotonic() - started < TOTAL_S:
        if any(msg.data for _, msg in success.since(episode_start)):
            break
        if time.monotonic() - episode_start > EPISODE_S:  # a miss: next episode
            reply = tester.call("std_srvs/srv/Trigger", "/sim_robot/reset")
            assert reply.success, reply.message
            episode_start, resets = time.monotonic(), resets + 1
        time.sleep(0.1)
    else:
        raise AssertionError(
            f"no grasp within {TOTAL_S} s ({resets} resets, {len(commands.items)} commands, "
            f"{len(joint_states.items)} joint_states)\nsim:\n{sim.log()}\npolicy:\n"
            f"{policy.log()}")
    assert resets <= 2, f"the student needed {resets + 1} episodes for the cube"
    names = list(joint_states.items[-1][1].name)
    assert names == ["ee_x", "ee_y", "ee_z", "finger_left", "finger_right"], names
    labels = [d.label for d in commands.items[-1][1].layout.dim]
    assert labels == ["ee_vx", "ee_vy", "ee_vz", "gripper_opening"], labels


def _chunk_values(msg):
    for status in msg.status:
        if status.name.startswith("policy_inference"):
            values = {kv.key: kv.value for kv in status.values}
            if "chunk_replans" in values:
                return values
    return None


def test_inference_node_runs_a_chunked_policy_and_replans_on_schedule(
        tester, start_node, chunk_onnx):
    """A OneDP generator (action chunks) drives the sim; re-plans follow n_exec, few are late."""
    from distill_ros.export.metadata import PolicyMetadata

    meta = PolicyMetadata.read(chunk_onnx)
    assert meta.policy_kind == "action_chunk"
    n_exec = meta.chunking.n_exec
    diags = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    sim = start_node("sim_robot", "--params-file", str(SIM_PARAMS))
    policy = start_node("policy_inference", "--params-file", str(PARAMS),
                        "-p", f"model_path:={chunk_onnx}")
    started = time.monotonic()
    values = None
    while time.monotonic() - started < TOTAL_S:
        for _, msg in diags.since(started):
            got = _chunk_values(msg)
            if got is not None and int(got["chunk_ticks"]) >= 60:
                values = got
        if values is not None:
            break
        time.sleep(0.2)
    assert values is not None, f"no chunk diagnostics\nsim:\n{sim.log()}\npolicy:\n{policy.log()}"
    ticks, replans = int(values["chunk_ticks"]), int(values["chunk_replans"])
    assert abs(replans - ticks / n_exec) <= 2, \
        f"{replans} re-plans in {ticks} ticks; expected one per {n_exec} ticks: {values}"
    assert int(values["chunk_late_replans"]) <= max(2, replans // 10), values

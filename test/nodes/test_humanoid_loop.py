"""The humanoid closed loop across processes: motion_command -> policy_inference -> sim_robot.

Three node processes with the demo's parameter files (launch/humanoid_demo.launch.py). The
policy is `humanoid_models.teacher_student_onnx`: the shipped DeepMimic walk actor with the
student's inputs (proprio and phase from sim_robot's features, the masked command from
motion_command), competent at walking but deaf to the command. The test asserts that the
loop closes (every sim period applies a new command, computed on the mask's arrival), that
the humanoid is still up after 5 simulated seconds and after a live mode switch, and that
sim_robot publishes the joints, features and keypoint markers of the humanoid scene.
"""

import time

import numpy as np

from conftest import REPO
from nodes.conftest import OUTPUT
from nodes.humanoid_models import teacher_student_onnx

F64 = "std_msgs/msg/Float64MultiArray"
CONFIG = REPO / "config"
# Control periods (1/30 s of simulated time each) per wall-clock second. Half real time: on a
# machine shared by many test runs, three Python processes answer each period within its
# 67 ms; at 30 Hz (33 ms) a few periods in ten went without a new command on 2 busy cores.
# bench/bench_humanoid_loop.py measures the loop at 30 Hz.
RATE_HZ = 15.0


def _status(diagnostics, name, after=0.0):
    """Key values of the latest ``/diagnostics`` status called ``name`` after ``after``."""
    for _, msg in reversed(diagnostics.since(after)):
        for status in msg.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values}
    return None


def test_motion_command_drives_the_student_that_keeps_the_humanoid_walking(
        tester, start_node, tmp_path):
    from distill_ros.nodes.command_output import array_labels
    from distill_ros.tasks.humanoid.commands import CommandSpace, MODES
    from distill_ros.tasks.humanoid.scene import (ACTUAL_COLOR, joint_names, REFERENCE_COLOR,
                                                  STAND_SECONDS)

    model = teacher_student_onnx(tmp_path / "walk_as_student.onnx")
    ros = tester.ros
    success = tester.record("std_msgs/msg/Bool", "/sim_robot/success")
    diagnostics = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    joints = tester.record("sensor_msgs/msg/JointState", "joint_states")
    markers = tester.record("visualization_msgs/msg/MarkerArray", "/sim_robot/markers")
    masks = tester.record(F64, "/motion_command/mask")
    commands = tester.record(F64, OUTPUT)
    procs = [start_node("sim_robot", "--params-file",
                        str(CONFIG / "humanoid_sim_robot_params.yaml"), "-p",
                        f"rate_hz:={RATE_HZ}"),
             start_node("motion_command", "--params-file",
                        str(CONFIG / "motion_command_params.yaml")),
             start_node("policy_inference", "--params-file",
                        str(CONFIG / "humanoid_policy_inference_params.yaml"),
                        "-p", f"model_path:={model}")]

    def logs():
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in procs)
    # 1. the policy's first command; until then sim_robot holds the start pose (and may fall)
    start, first = commands.wait_for(lambda m: True, 0, 90.0, f"policy command\n{logs()}")
    assert len(first.data) == 36 and array_labels(first)[0] == "chest/angle"
    # 2. five simulated seconds up, a new command every period
    success.wait_for(lambda m: m.data, start, 120.0, f"{STAND_SECONDS} s up\n{logs()}")
    # 3. a live mode switch: the mask on the topic changes, the loop goes on
    assert tester.set_param("/motion_command", "mode", "upper_body").successful
    upper = CommandSpace((1,)).mask(MODES["upper_body"]).tolist()
    switched, _ = masks.wait_for(lambda m: list(m.data) == upper, time.monotonic(), 10.0,
                                 "upper-body mask")
    sim_before = _status(diagnostics, "sim_robot: humanoid scene", switched)
    while sim_before is None and time.monotonic() < switched + 10.0:
        time.sleep(0.1)
        sim_before = _status(diagnostics, "sim_robot: humanoid scene", switched)
    time.sleep(4.0)
    sim = _status(diagnostics, "sim_robot: humanoid scene", switched + 3.0)
    assert sim_before is not None and sim is not None, f"no sim_robot diagnostics\n{logs()}"
    steps = int(sim["total_steps"]) - int(sim_before["total_steps"])
    fresh = int(sim["fresh_command_steps"]) - int(sim_before["fresh_command_steps"])
    assert steps >= 2 * RATE_HZ, f"sim_robot stepped {steps} times in 3 s+\n{logs()}"
    # a late tick makes the timer's next one come early (it keeps its phase), so a few
    # periods on a busy machine pass without a new command; 55-60 of 60 seen at 15 Hz
    assert fresh >= 0.8 * steps, f"{fresh} of {steps} periods got a new command\n{logs()}"
    assert sim["falls"] == sim_before["falls"], f"the humanoid fell: {sim}\n{logs()}"
    assert sim["success"] == "True" and float(sim["mean_imitation_reward"]) > 0.4, sim
    inference = _status(diagnostics, "policy_inference: control loop", switched)
    assert inference is not None, f"no policy_inference diagnostics\n{logs()}"
    # 4. what sim_robot publishes of the humanoid
    _, joint_state = joints.wait_for(lambda m: True, 0, 5.0, "joint_states")
    assert list(joint_state.name) == joint_names() and len(joint_state.position) == 28
    _, marker_array = markers.wait_for(lambda m: True, 0, 5.0, "markers")
    colours = {m.ns: (m.color.r, m.color.g, m.color.b, m.color.a)
               for m in marker_array.markers if m.ns in ("actual", "reference")}
    assert np.allclose(colours["actual"], ACTUAL_COLOR)
    assert np.allclose(colours["reference"], REFERENCE_COLOR)
    assert sum(m.ns == "reference" for m in marker_array.markers) == 6
    assert ros.backend_name() in ("dds", "rclpy")

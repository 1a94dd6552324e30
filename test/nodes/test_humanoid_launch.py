"""The humanoid demo launched: `distill-ros launch humanoid_demo` and `ros2 launch` alike.

Both start sim_robot (humanoid scene), motion_command and policy_inference with the same
parameter files; the policy is the DeepMimic walk actor with the student's inputs
(`humanoid_models.teacher_student_onnx`), so the humanoid walks in the launched demo.
"""

import os
import signal
import subprocess
import sys

from conftest import REPO
from nodes.humanoid_models import teacher_student_onnx
from nodes.test_launch import _ros2_launch, assert_launcher_ended_its_nodes
from ros.ros2_cli import needs_ros2


def test_task_and_mode_arguments_reach_the_sim_and_motion_command():
    from distill_ros.launcher import node_commands

    sim, motion, inference = node_commands(
        "humanoid_demo", ["task:=jump", "mode:=head_hands", "model_path:=/m.onnx"])
    assert sim[2:4] == ["distill_ros.nodes.sim_robot", "--ros-args"]
    assert "task:=jump" in sim and "clip:=jump" in motion and "mode:=head_hands" in motion
    assert "model_path:=/m.onnx" in inference and "clip:=jump" not in sim + inference
    assert str(REPO / "config" / "motion_command_params.yaml") in motion
    grasp_sim, grasp_inference = node_commands("sim_demo", ["task:=mug", "mode:=full"])
    assert "task:=mug" in grasp_sim and not any("clip" in a or "mode" in a
                                                for a in grasp_sim + grasp_inference)


def _stop(proc, group: bool = False):
    """Ctrl-C (the launcher, or the whole ros2 launch session), then its output."""
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        out, _ = proc.communicate()
    return out


def test_cli_launch_runs_the_humanoid_demo_until_interrupted(tester, tmp_path):
    model = teacher_student_onnx(tmp_path / "walk.onnx")
    success = tester.record("std_msgs/msg/Bool", "/sim_robot/success")
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill_ros.cli", "launch", "humanoid_demo",
         f"model_path:={model}", "rviz:=false"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        success.wait_for(lambda m: m.data, 0, 120.0, "5 s of walking in the launched demo")
    finally:
        out = _stop(proc)
    assert "mode full" in out and "humanoid" in out, out[-3000:]
    assert_launcher_ended_its_nodes(proc, out, 3)


@needs_ros2
def test_ros2_launch_humanoid_demo_walks_and_ctrl_c_ends_every_node_cleanly(
        tester, tmp_path):
    model = teacher_student_onnx(tmp_path / "walk.onnx")
    success = tester.record("std_msgs/msg/Bool", "/sim_robot/success")
    proc = _ros2_launch(tmp_path, f"model_path:={model}", "mode:=upper_body",
                        launch_file="humanoid_demo.launch.py")
    try:
        success.wait_for(lambda m: m.data, 0, 120.0, "5 s of walking under ros2 launch")
        mode = tester.get_param("/motion_command", "mode")
    finally:
        out = _stop(proc, group=True)
    assert mode == "upper_body", out[-3000:]
    assert out.count("process has finished cleanly") == 3, out[-4000:]
    assert "process has died" not in out and "Traceback" not in out, out[-4000:]

"""Ctrl-C, once or twice (as under ``ros2 launch``): every node cleans up and exits 0.

Runs on the backend under test (DDS, and rclpy on the rerun of scripts/test.sh).
"""

import signal
import time

from conftest import write_config
from nodes.conftest import PARAMS

OUTPUT = "/forward_command_controller/commands"


def _is_hold(msg):
    return list(msg.data[:3]) == [0.0, 0.0, 0.0]


def test_ctrl_c_publishes_the_hold_command_and_policy_inference_exits_0(
        tester, start_node, fake_robot, student_onnx):
    commands = tester.record("std_msgs/msg/Float64MultiArray", OUTPUT)
    node = start_node("policy_inference", "--params-file", str(PARAMS),
                      "-p", f"model_path:={student_onnx}")
    commands.wait_for(lambda m: not _is_hold(m), 0, 30.0, f"policy command\n{node.log()}")
    interrupted = time.monotonic()
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(20) == 0, node.log()
    assert "Traceback" not in node.log(), node.log()
    commands.wait_for(_is_hold, interrupted, 5.0, f"hold command after Ctrl-C\n{node.log()}")


def test_trainer_lets_the_stage_stop_through_a_second_ctrl_c_and_exits_0(
        tester, start_node, tmp_path):
    config = write_config(tmp_path / "c.yaml", tasks=["cube"], held_out=[],
                          teachers={"timesteps": 200000, "checkpoint_every": 100000})
    diags = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    trainer = start_node("distill_trainer", "-p", f"config_path:={config}",
                         "-p", f"run_dir:={tmp_path / 'run'}", "-p", "autostart:=true",
                         "-p", "progress_rate_hz:=4.0", "-p", "stages:=[teachers]")
    diags.wait_for(lambda m: any(kv.key == "teachers" and kv.value == "running"
                                 for s in m.status for kv in s.values), 0, 60.0,
                   f"the teachers stage running\n{trainer.log()}")
    time.sleep(2.0)       # into the stage's training: stopping it now means saving
    trainer.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 20
    while "waiting for it to save" not in trainer.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    trainer.proc.send_signal(signal.SIGINT)   # arrives while job.stop(wait=True) waits
    assert trainer.proc.wait(60) == 0, trainer.log()
    assert "SIGINT ignored: already shutting down" in trainer.log(), trainer.log()
    assert "Traceback" not in trainer.log(), trainer.log()

"""Node code is written once: only ``distill_ros/ros/`` knows which middleware runs it."""

import ast
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO

NODES = sorted((REPO / "distill_ros" / "nodes").glob("*.py"))
MIDDLEWARE = {"rclpy", "cyclonedds", "rosbags"}


@pytest.mark.parametrize("path", NODES, ids=lambda p: p.name)
def test_node_files_never_look_at_the_backend(path):
    tree = ast.parse(path.read_text(), str(path))
    offences = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            offences += [a.name for a in node.names if a.name.split(".")[0] in MIDDLEWARE]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in MIDDLEWARE or node.module.startswith(
                    "distill_ros.ros._"):
                offences.append(node.module)
        elif isinstance(node, ast.Name) and node.id in {"BACKEND", "backend_name"}:
            offences.append(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in {"BACKEND", "backend_name"}:
            offences.append(node.attr)
    assert not offences, f"{path.name} reaches past distill_ros.ros: {offences}"


@pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                    reason="rclpy does not import: source /opt/ros/humble/setup.bash "
                           "(scripts/test.sh reruns test/ros and test/nodes that way)")
def test_nodes_pick_rclpy_when_it_imports():
    env = {**os.environ}
    env.pop("DISTILL_ROS_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", "import distill_ros.ros as ros, distill_ros.nodes.sim_robot; "
                               "print(ros.backend_name())"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "rclpy"


@pytest.mark.parametrize("bad", ["model_path", "model_path:=[1,"])
def test_a_malformed_ros_args_parameter_is_a_message_not_a_traceback(bad):
    out = subprocess.run(
        [sys.executable, "-m", "distill_ros.nodes.policy_inference", "--ros-args", "-p", bad],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "error: " in out.stderr, out.stderr
    assert "model_path" in out.stderr, out.stderr

"""Launch files: checked statically, run by `distill-ros launch` and by the real `ros2 launch`."""

import ast
import os
import re
import signal
import subprocess
import sys
import time
from glob import glob

import pytest

from conftest import REPO, write_config
from distill_ros.launcher import LAUNCH_ARGUMENTS, LAUNCH_SETS
from ros.ros2_cli import needs_ros2, package_prefix, ros2_env

LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
EXTERNAL = {"rviz2": {"rviz2"}}  # packages we start but do not ship


def _setup_py():
    text = (REPO / "setup.py").read_text()
    scripts = dict(re.findall(r'"([\w-]+) = (distill_ros[\w.]+:main)"', text))
    globs = re.findall(r'glob\("([^"]+)"\)', text)
    installed = {os.path.relpath(p, REPO) for g in globs for p in glob(str(REPO / g))}
    return scripts, installed


def _kwargs(call):
    return {k.arg: k.value for k in call.keywords}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def _literal(node):
    return node.value if isinstance(node, ast.Constant) else None


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist_and_are_installed(path):
    tree = ast.parse(path.read_text())
    scripts, installed = _setup_py()
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body), f"{path.name} has no generate_launch_description()"
    assert os.path.relpath(path, REPO) in installed, f"{path.name} not installed by setup.py"
    ours = []
    for call in _calls(tree, "Node"):
        kw = _kwargs(call)
        package, executable = _literal(kw["package"]), _literal(kw["executable"])
        if package != "distill_ros":
            assert executable in EXTERNAL.get(package, ()), f"unknown {package}/{executable}"
            continue
        assert executable in scripts, f"{path.name}: no console script {executable!r}"
        module, _ = scripts[executable].split(":")
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module
        files = [c.value for c in ast.walk(kw["parameters"])
                 if isinstance(c, ast.Constant) and str(c.value).endswith(".yaml")]
        assert len(files) == 1, f"{path.name}: {executable} needs one parameter file"
        assert f"config/{files[0]}" in installed, f"config/{files[0]} missing or not installed"
        ours.append((executable, files[0]))
    for name in [c.value for c in ast.walk(tree) if isinstance(c, ast.Constant)
                 and str(c.value).endswith(".rviz")]:
        assert f"rviz/{name}" in installed, f"rviz/{name} missing or not installed"
    stem = path.name[:-len(".launch.py")]
    assert LAUNCH_SETS.get(stem) == ours, f"`distill-ros launch {stem}` starts other nodes"
    declared = {_literal(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument")}
    assert declared - {"rviz"} <= set(LAUNCH_ARGUMENTS), declared


def test_rviz_argument_is_accepted_and_the_rest_reach_their_nodes(capsys):
    from distill_ros.launcher import node_commands

    sim, inference = node_commands("sim_demo", ["rviz:=false", "model_path:=/m.onnx",
                                                "task:=mug"])
    assert "model_path:=/m.onnx" in inference and "task:=mug" in sim
    assert not any("rviz" in arg for arg in sim + inference)
    assert "RViz needs ROS 2" in capsys.readouterr().err


def test_every_launch_set_has_a_launch_file():
    assert sorted(LAUNCH_SETS) == sorted(p.name[:-len(".launch.py")] for p in LAUNCH_FILES)


def test_cli_launch_runs_the_sim_demo_until_interrupted(tester, student_onnx):
    success = tester.record("std_msgs/msg/Bool", "/sim_robot/success")
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill_ros.cli", "launch", "sim_demo",
         f"model_path:={student_onnx}"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        success.wait_for(lambda m: m.data, 0, 60.0, "grasp in the launched demo")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert_launcher_ended_its_nodes(proc, out, 2)


def assert_launcher_ended_its_nodes(proc, out: str, count: int) -> None:
    """`distill-ros launch` exited 0 after Ctrl-C and none of its `count` nodes outlived it."""
    assert proc.returncode == 0, out[-3000:]
    pids = [int(p) for p in re.findall(r"\d+", out.split("pids", 1)[1].split("]")[0])]
    assert len(pids) == count, out[-2000:]
    time.sleep(0.2)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(
            f"/proc/{pid}/status").read(), f"node {pid} outlived the launcher"


def _ros2_launch(tmp_path, *args, launch_file="sim_demo.launch.py"):
    prefix = package_prefix(tmp_path / "install")
    base = ros2_env()
    env = ros2_env(AMENT_PREFIX_PATH=f"{prefix}{os.pathsep}{base['AMENT_PREFIX_PATH']}",
                   OMP_NUM_THREADS="1", ROS_LOG_DIR=str(tmp_path / "log"))
    # own session: Ctrl-C below reaches ros2 launch AND every node, as a terminal's does
    return subprocess.Popen(["ros2", "launch", "distill_ros", launch_file, *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def interrupt_launch(proc: subprocess.Popen, timeout_s: float) -> str:
    """Ctrl-C to a ``ros2 launch`` session (launch and nodes), SIGKILL if it lingers; output."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out


@needs_ros2
def test_ros2_launch_grasps_and_ctrl_c_ends_every_node_cleanly_with_a_hold(
        tester, student_onnx, tmp_path):
    success = tester.record("std_msgs/msg/Bool", "/sim_robot/success")
    commands = tester.record("std_msgs/msg/Float64MultiArray",
                             "/forward_command_controller/commands")
    # no rviz argument: the default is no RViz where rviz2 is not installed
    proc = _ros2_launch(tmp_path, f"model_path:={student_onnx}")
    try:
        success.wait_for(lambda m: m.data, 0, 120.0, "grasp under ros2 launch")
    finally:
        interrupted = time.monotonic()
        out = interrupt_launch(proc, 60)
    assert out.count("process has finished cleanly") == 2, out[-4000:]
    assert "process has died" not in out and "Traceback" not in out, out[-4000:]
    held = [m for _, m in commands.since(interrupted)]
    assert held and list(held[-1].data[:3]) == [0.0, 0.0, 0.0], \
        f"no hold command after Ctrl-C: {held[-3:]}\n{out[-3000:]}"


@needs_ros2
def test_ros2_launch_with_rviz_but_no_rviz2_stops_before_starting_nodes(tmp_path):
    if os.path.isdir("/opt/ros/humble/share/rviz2"):
        pytest.skip("rviz2 is installed here")
    proc = _ros2_launch(tmp_path, "rviz:=true", "model_path:=/nowhere.onnx")
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "rviz2 is not installed" in out, out
    assert "process started" not in out, f"nodes were started:\n{out}"


@needs_ros2
def test_ros2_launch_training_ctrl_c_waits_for_the_stage_and_the_trainer_exits_0(
        tester, tmp_path):
    config = write_config(tmp_path / "c.yaml", tasks=["cube"], held_out=[],
                          teachers={"timesteps": 200000, "checkpoint_every": 100000})
    diags = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    proc = _ros2_launch(tmp_path, f"config_path:={config}", f"run_dir:={tmp_path / 'run'}",
                        launch_file="training.launch.py")
    try:
        reply = tester.call("std_srvs/srv/Trigger", "/distill_trainer/start", timeout_s=60.0)
        assert reply.success, reply.message
        diags.wait_for(lambda m: any(kv.key == "teachers" and kv.value == "running"
                                     for s in m.status for kv in s.values), 0, 60.0,
                       "the teachers stage running")
        time.sleep(2.0)   # into training: the stage now saves when interrupted
    finally:
        out = interrupt_launch(proc, 90)
    assert "process has finished cleanly" in out, out[-4000:]
    assert "process has died" not in out and "Traceback" not in out, out[-4000:]

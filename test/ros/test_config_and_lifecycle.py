"""DDS config, --ros-args, backend choice, the lifecycle state machine, the rclpy backend."""

import importlib.util

import pytest

from conftest import importorskip_middleware

importorskip_middleware()

from distill_ros.ros import backend, dds_config  # noqa: E402 - after the skip check
from distill_ros.ros._dds import ros_args  # noqa: E402


def test_loopback_config_is_loopback_only():
    xml = dds_config.loopback_config()
    assert '<NetworkInterface name="lo"/>' in xml
    assert "<AllowMulticast>false</AllowMulticast>" in xml
    assert '<Peer address="127.0.0.1"/>' in xml
    index = int(xml.split("<MaxAutoParticipantIndex>")[1].split("<")[0])
    assert index >= 32, "Cyclone's default of 9 leaves later processes undiscovered"
    with pytest.raises(ValueError, match="at least 32"):
        dds_config.loopback_config(9)


def test_ensure_dds_config_respects_the_user(monkeypatch):
    monkeypatch.setenv("CYCLONEDDS_URI", "file:///etc/my_cyclone.xml")
    assert dds_config.ensure_dds_config() == "file:///etc/my_cyclone.xml"
    monkeypatch.delenv("CYCLONEDDS_URI")
    assert dds_config.ensure_dds_config() == dds_config.loopback_config()


def test_domain_id_from_env(monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    assert dds_config.domain_id() == 42
    monkeypatch.setenv("ROS_DOMAIN_ID", "400")
    with pytest.raises(ValueError, match="0..232"):
        dds_config.domain_id()


def test_backend_can_be_forced(monkeypatch):
    monkeypatch.setenv("DISTILL_ROS_BACKEND", "dds")
    assert backend.select_backend() == "dds"
    monkeypatch.setenv("DISTILL_ROS_BACKEND", "zenoh")
    with pytest.raises(ValueError, match="dds"):
        backend.select_backend()


def test_ros_args_parameters_and_params_file(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    rate_hz: 50.0\n"
        "inference:\n  ros__parameters:\n    model:\n      path: /m.onnx\n"
        "other:\n  ros__parameters:\n    rate_hz: 1.0\n")
    parsed = ros_args.parse([
        "prog", "--ros-args", "-p", "rate_hz:=100", "-p", "names:=[a, b]",
        "--params-file", str(params), "-r", "__ns:=/robot", "--", "-p", "ignored:=1"])
    assert parsed.namespace_for("inference") == "/robot"
    overrides = parsed.overrides_for("/robot/inference")
    assert overrides == {"rate_hz": 100, "names": ["a", "b"], "model.path": "/m.onnx"}
    assert "ignored" not in overrides, "arguments after '--' are not ROS arguments"


@pytest.fixture
def managed_cls(ros_mod):
    """A LifecycleNode subclass that records its callbacks and can be told to fail."""

    class Managed(ros_mod.LifecycleNode):
        def __init__(self):
            super().__init__("managed_unit")
            self.calls = []
            self.activate_result = ros_mod.TransitionCallbackReturn.SUCCESS

        def on_configure(self, state):
            self.calls.append(("configure", state.label))
            return ros_mod.TransitionCallbackReturn.SUCCESS

        def on_activate(self, state):
            self.calls.append(("activate", state.label))
            if self.activate_result == "raise":
                raise RuntimeError("GPU fell off the bus")
            return self.activate_result

        def on_error(self, state):
            self.calls.append(("error", state.label))
            return ros_mod.TransitionCallbackReturn.SUCCESS
    return Managed


def test_lifecycle_transitions_failure_and_error(ros_mod, managed_cls):
    node = managed_cls()
    try:
        returns = ros_mod.TransitionCallbackReturn
        assert node.current_state.label == "unconfigured"
        assert node.trigger_activate() == returns.FAILURE, "activate needs configure first"
        assert node.trigger_configure() == returns.SUCCESS
        node.activate_result = returns.FAILURE
        assert node.trigger_activate() == returns.FAILURE
        assert node.current_state.label == "inactive", "FAILURE stays in the start state"
        node.activate_result = "raise"
        assert node.trigger_activate() == returns.ERROR
        assert node.current_state.label == "unconfigured", "on_error SUCCESS -> unconfigured"
        assert ("error", "errorprocessing") in node.calls
        node.activate_result = returns.SUCCESS
        assert node.trigger_configure() == returns.SUCCESS
        assert node.trigger_activate() == returns.SUCCESS and node.is_active
        assert node.trigger_shutdown() == returns.SUCCESS
        assert node.current_state.label == "finalized"
    finally:
        node.destroy_node()


@pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                    reason="rclpy does not import: source /opt/ros/humble/setup.bash")
def test_rclpy_backend_interfaces_and_qos():
    from distill_ros.ros._rclpy import api
    from distill_ros.ros import qos

    joint_state = api.get_interface("sensor_msgs/msg/JointState")
    assert joint_state.__module__.startswith("sensor_msgs.msg")
    profile = api.to_rclpy_qos(qos.SENSOR_DATA)
    assert profile.depth == 5


def test_ros_args_remapping_follows_rcl_rules():
    parsed = ros_args.parse([
        "prog", "--ros-args", "-r", "inference:joint_states:=/robot/joint_states",
        "-r", "cmd:=out", "-r", "cmd:=ignored_second_rule", "-r", "~/estop:=/safety/estop",
        "-r", "rosservice://reset:=/sim/reset", "-r", "sim:__name:=robot_sim",
        "-r", "robot_sim:__ns:=/lab", "-r", "__ns:=/first", "-r", "__ns:=/second"])
    ns = "/arm"
    assert parsed.remap("joint_states", "inference", ns) == "/robot/joint_states"
    assert parsed.remap("/arm/joint_states", "inference", ns) == "/robot/joint_states", \
        "rules match the fully qualified name"
    assert parsed.remap("joint_states", "other", ns) == "/arm/joint_states", \
        "a node-specific rule leaves other nodes alone"
    assert parsed.remap("cmd", "inference", ns) == "/arm/out", "the first matching rule wins"
    assert parsed.remap("~/estop", "inference", ns) == "/safety/estop"
    assert parsed.remap("estop", "inference", ns) == "/arm/estop", "~/estop is private"
    assert parsed.remap("reset", "x", "/", "service") == "/sim/reset"
    assert parsed.remap("reset", "x", "/", "topic") == "/reset", "rosservice:// rule on a topic"
    # __node matches the code's name; __ns the name after __node; first rule wins
    assert parsed.name_for("sim") == "robot_sim" and parsed.name_for("inference") == "inference"
    assert parsed.namespace_for("robot_sim") == "/lab"
    assert parsed.namespace_for("inference") == "/first"
    renamed = ros_args.parse(["--ros-args", "-r", "__node:=left",
                              "-r", "inference:chatter:=/x"])
    assert renamed.remap("chatter", renamed.name_for("inference"), "/") == "/chatter", \
        "node-specific topic rules match the node's current name only"
    with pytest.raises(ValueError, match="'chatter:=bad name'"):
        ros_args.parse(["--ros-args", "-r", "chatter:=bad name"])
    with pytest.raises(ValueError, match="expected \\[node:\\]from:=to"):
        ros_args.parse(["--ros-args", "-r", ":chatter:=x"])
    with pytest.raises(ValueError, match="takes no rostopic://"):
        ros_args.parse(["--ros-args", "-r", "rostopic://__ns:=/x"])

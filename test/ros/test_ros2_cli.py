"""The real ``ros2`` CLI drives a node of the backend under test (DDS, or rclpy on the rerun).

Graph, parameters (get/set/describe/dump/load), lifecycle, services and topics, as a ROS
user would. Skipped where ROS 2 is not installed.
"""

import json
import time

import pytest

from ros.conftest import Peer
from ros.ros2_cli import needs_ros2, ros2, stop_daemon

pytestmark = needs_ros2
NODE = "/cli_target"


@pytest.fixture(scope="module")
def target():
    """The peer node the CLI talks to; the ros2 daemon is stopped at the end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISTILL_ROS_PEER_LIFETIME_S", "600")
        node = Peer("cli_target")
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()
        stop_daemon()


def _eventually(args, expected, timeout_s=30.0):
    """Run ``ros2 ARGS`` until its output contains ``expected`` (discovery takes a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = ros2(*args, check=False)
        if expected in out or time.monotonic() > deadline:
            assert expected in out, f"`ros2 {' '.join(args)}` never showed {expected!r}:\n{out}"
            return out
        time.sleep(0.5)


def test_node_info_and_topic_list_show_the_node(target):
    _eventually(["node", "list"], NODE)
    info = _eventually(["node", "info", NODE], "/cli_target/reset: std_srvs/srv/Trigger")
    for line in ("/cli_target/in: std_msgs/msg/String",
                 "/cli_target/transition_event: lifecycle_msgs/msg/TransitionEvent",
                 "/cli_target/get_transition_graph: lifecycle_msgs/srv/GetAvailableTransitions",
                 "/cli_target/set_parameters: rcl_interfaces/srv/SetParameters"):
        assert line in info, info
    _eventually(["topic", "list", "-t"], "/cli_target/in [std_msgs/msg/String]")


def test_parameters_get_set_describe_dump_and_load(target, tmp_path):
    _eventually(["param", "list", NODE], "gain")
    assert "Double value is: 1.0" in ros2("param", "get", NODE, "gain")
    assert "Set parameter successful" in ros2("param", "set", NODE, "gain", "2.5")
    refused = ros2("param", "set", NODE, "gain", "50.0", check=False)
    assert "Setting parameter failed: Parameter gain out of range" in refused, refused
    read_only = ros2("param", "set", NODE, "input_topic", "/elsewhere", check=False)
    assert "Trying to set a read-only parameter: input_topic." in read_only, read_only
    described = ros2("param", "describe", NODE, "gain", "input_topic", "retries")
    for line in ("Description: feedback gain", "Min value: 0.0", "Max value: 10.0",
                 "Description: where text arrives", "Read only: true", "Max value: 5"):
        assert line in described, described

    dump = tmp_path / "cli_target.yaml"
    dump.write_text(ros2("param", "dump", NODE))
    assert "gain: 2.5" in dump.read_text() and "ros__parameters" in dump.read_text()
    assert "Set parameter successful" in ros2("param", "set", NODE, "gain", "0.5")
    loaded = ros2("param", "load", NODE, str(dump))
    assert "Set parameter gain successful" in loaded, loaded
    assert "Double value is: 2.5" in ros2("param", "get", NODE, "gain")


def test_topic_echo_reads_a_byte_field(target):
    out = ros2("topic", "echo", "--once", "--qos-durability", "transient_local",
               "--qos-reliability", "reliable", "/cli_target/status",
               "diagnostic_msgs/msg/DiagnosticArray", timeout_s=60)
    assert "message: warming up" in out and "level: \"\\x01\"" in out, out


def test_topic_echo_decodes_commands_sent_as_serialised_bytes(target):
    out = ros2("topic", "echo", "--once", "--qos-durability", "transient_local",
               "--qos-reliability", "reliable", "/cli_target/commands",
               "std_msgs/msg/Float64MultiArray", timeout_s=60)
    assert "label: ee_vx" in out and "label: gripper_opening" in out, out
    assert "- -0.375\n- 0.0625" in out, out


def test_service_call_and_topic_pub(target):
    answer = ros2("service", "call", "/cli_target/reset", "std_srvs/srv/Trigger")
    assert "success=True" in answer and "reset in unconfigured" in answer, answer
    ros2("topic", "pub", "-t", "5", "-r", "10", "-w", "1", "/cli_target/in",
         "std_msgs/msg/String", "{data: hello from ros2}")
    target.proc.stdin.write("\n")  # nothing to do; keeps the peer's stdin open


def test_lifecycle_list_and_every_transition(target):
    graph = _eventually(["lifecycle", "list", NODE, "-a"], "configure [1]")
    for line in ("Start: unconfigured", "Goal: configuring", "activate [3]",
                 "transition_success [10]", "shutdown [7]"):
        assert line in graph, graph
    assert "unconfigured [1]" in ros2("lifecycle", "get", NODE)
    for transition, state in (("configure", "inactive [2]"), ("activate", "active [3]"),
                              ("deactivate", "inactive [2]"), ("cleanup", "unconfigured [1]"),
                              ("shutdown", "finalized [4]")):
        out = ros2("lifecycle", "set", NODE, transition)
        assert "Transitioning successful" in out, f"{transition}: {out}"
        assert state in ros2("lifecycle", "get", NODE), transition
    heard = [json.loads(line) for line in target.lines()]
    assert {"heard": "hello from ros2"} in heard, f"the node never got ros2 topic pub: {heard}"

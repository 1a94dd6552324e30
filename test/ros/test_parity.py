"""One API on both backends: this file runs as-is on DDS and, with ROS 2 sourced, on rclpy.

``scripts/test.sh`` runs ``test/ros`` and ``test/nodes`` a second time with
``DISTILL_ROS_TEST_BACKEND=rclpy``; every assertion here must hold on both.
"""

import threading

import pytest

from ros.conftest import Peer
from ros.ros2_cli import needs_ros2, ros2_env


def _wait(event, what, timeout_s=10.0):
    assert event.wait(timeout_s), f"no {what} within {timeout_s} s"


def test_byte_fields_are_one_byte_bytes_after_a_round_trip(ros_mod, make_node):
    status_cls = ros_mod.get_interface("diagnostic_msgs/msg/DiagnosticStatus")
    array_cls = ros_mod.get_interface("diagnostic_msgs/msg/DiagnosticArray")
    assert status_cls.WARN == b"\x01" and status_cls().level == b"\x00"
    node = make_node("parity_bytes")
    got, arrived = [], threading.Event()
    node.create_subscription(array_cls, "/parity/diagnostics",
                             lambda m: (got.append(m), arrived.set()), ros_mod.LATCHED)
    pub = node.create_publisher(array_cls, "/parity/diagnostics", ros_mod.LATCHED)
    pub.publish(array_cls(status=[status_cls(level=status_cls.ERROR, name="x")]))
    with ros_mod.spin_in_background(node):
        _wait(arrived, "DiagnosticArray")
    level = got[0].status[0].level
    assert level == b"\x02" == status_cls.ERROR, f"byte field came back as {level!r}"


@pytest.mark.parametrize("value", [True, 7, 2.5, "text", [b"\x01", b"\xff"], [True, False],
                                   [1, 2], [0.5, 1.5], ["a", "b"]], ids=repr)
def test_parameter_value_messages_round_trip(ros_mod, value):
    param = ros_mod.Parameter("p", value=value)
    msg = param.to_value_msg(ros_mod.get_interface("rcl_interfaces/msg/ParameterValue"))
    assert msg.type == param.get_parameter_value().type == param.type_.value
    back = ros_mod.Parameter.from_value_msg("p", msg)
    assert back.value == value and type(back.value) is type(value)
    assert back.type_ == param.type_


def test_client_call_works_without_spinning_the_calling_node(ros_mod, make_node):
    trigger = ros_mod.get_interface("std_srvs/srv/Trigger")
    server = make_node("parity_server")
    server.create_service(trigger, "~/poke",
                          lambda req, resp: setattr(resp, "message", "poked") or resp)
    caller = make_node("parity_caller")   # never spun by anyone
    client = caller.create_client(trigger, "/parity_server/poke")
    with ros_mod.spin_in_background(server):
        assert client.wait_for_service(10.0)
        assert client.call(trigger.Request(), 10.0).message == "poked"
        assert client.call(trigger.Request(), 10.0).message == "poked", "second call too"
    silent = caller.create_client(trigger, "/parity_nobody/poke")
    with pytest.raises(TimeoutError, match="parity_nobody"):
        silent.call(trigger.Request(), 0.3)


def _describe(ros_mod, node, target, names):
    srv = ros_mod.get_interface("rcl_interfaces/srv/DescribeParameters")
    client = node.create_client(srv, f"{target}/describe_parameters")
    assert client.wait_for_service(10.0)
    return client.call(srv.Request(names=names), 10.0).descriptors


def test_descriptors_guard_sets_and_are_served(ros_mod, make_node):
    node = make_node("parity_params", parameter_overrides={"rate_hz": 50.0})
    desc = ros_mod.parameter_descriptor
    node.declare_parameter("rate_hz", 100.0, desc("control rate, Hz", float_range=(1, 1000)))
    node.declare_parameter("topic", "/in", desc("input topic", read_only=True))
    node.declare_parameter("depth", 5, desc("queue depth", int_range=(1, 10), step=1))
    assert node.get_parameter("rate_hz").value == 50.0, "the override wins, inside the range"
    set_one = lambda n, v: node.set_parameters([ros_mod.Parameter(n, value=v)])[0]  # noqa: E731
    assert set_one("rate_hz", 1000.0).successful, "range edges are inside"
    too_fast = set_one("rate_hz", 1500.0)
    assert not too_fast.successful
    assert too_fast.reason == "Parameter rate_hz out of range Min: 1.0, Max: 1000.0, value: 1500.0"
    assert set_one("depth", 0).reason == "Parameter depth out of range. Min: 1, Max: 10, value: 0"
    read_only = set_one("topic", "/other")
    assert (read_only.successful, read_only.reason) == (
        False, "Trying to set a read-only parameter: topic.")
    assert node.get_parameter("topic").value == "/in"
    assert node.get_parameter("rate_hz").value == 1000.0
    wrong = set_one("rate_hz", "fast")
    assert wrong.reason == "Wrong parameter type, expected 'Type.DOUBLE' got 'Type.STRING'"

    asker = make_node("parity_asker")
    with ros_mod.spin_in_background(node):
        rate, topic = _describe(ros_mod, asker, "/parity_params", ["rate_hz", "topic"])
    assert rate.description == "control rate, Hz" and rate.type == 3 and not rate.read_only
    assert (rate.floating_point_range[0].from_value,
            rate.floating_point_range[0].to_value) == (1.0, 1000.0)
    assert topic.read_only and topic.description == "input topic" and topic.type == 4


def test_an_override_outside_the_range_is_a_value_error(ros_mod, make_node):
    node = make_node("parity_bad_override", parameter_overrides={"rate_hz": 5000.0})
    with pytest.raises(ValueError, match="rate_hz"):
        node.declare_parameter("rate_hz", 100.0,
                               ros_mod.parameter_descriptor(float_range=(1, 1000)))


def test_lifecycle_nodes_serve_their_transition_graph(ros_mod, make_node):
    managed = ros_mod.LifecycleNode("parity_managed")
    try:
        srv = ros_mod.get_interface("lifecycle_msgs/srv/GetAvailableTransitions")
        client = make_node("parity_graph_asker").create_client(
            srv, "/parity_managed/get_transition_graph")
        with ros_mod.spin_in_background(managed):
            assert client.wait_for_service(10.0), "no ~/get_transition_graph"
            graph = client.call(srv.Request(), 10.0).available_transitions
    finally:
        managed.destroy_node()
    edges = {(t.transition.id, t.start_state.label, t.goal_state.label) for t in graph}
    assert (1, "unconfigured", "configuring") in edges
    assert (10, "configuring", "inactive") in edges
    assert (7, "active", "shuttingdown") in edges
    assert (60, "errorprocessing", "unconfigured") in edges
    assert len(edges) == 25, sorted(edges)


@needs_ros2
def test_a_node_of_the_other_backend_answers_the_same(ros_mod, make_node):
    other = "rclpy" if ros_mod.backend_name() == "dds" else "dds"
    peer = Peer("cli_target", env=ros2_env(DISTILL_ROS_BACKEND=other))   # a mixed graph
    try:
        peer.wait_ready()
        node = make_node("parity_mixed")
        srv = ros_mod.get_interface("rcl_interfaces/srv/SetParameters")
        client = node.create_client(srv, "/cli_target/set_parameters")
        assert client.wait_for_service(20.0), f"no {other} peer"
        param = ros_mod.get_interface("rcl_interfaces/msg/Parameter")
        results = client.call(srv.Request(parameters=[
            param(name="gain", value=ros_mod.Parameter("gain", value=50.0).to_value_msg()),
            param(name="input_topic", value=ros_mod.Parameter("t", value="/x").to_value_msg()),
            param(name="gain", value=ros_mod.Parameter("gain", value=2.0).to_value_msg())]),
            10.0).results
        gain = _describe(ros_mod, node, "/cli_target", ["gain"])[0]
    finally:
        peer.stop()
    assert [r.reason for r in results] == [
        "Parameter gain out of range Min: 0.0, Max: 10.0, value: 50.0",
        "Trying to set a read-only parameter: input_topic.", ""]
    assert results[2].successful and gain.description == "feedback gain"

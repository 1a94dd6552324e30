"""Real Cyclone DDS across processes (loopback): topics, services, parameters, lifecycle."""

import json
import time

import pytest


@pytest.fixture(scope="module")
def node(ros_mod):
    """One test-side node for the whole module."""
    n = ros_mod.Node("tester")
    yield n
    n.destroy_node()


def test_message_published_here_is_received_in_another_process(ros_mod, node, peer):
    listener = peer("listener", "/distill_test/joint_states")
    listener.wait_ready()
    joint_state = ros_mod.get_interface("sensor_msgs/msg/JointState")
    pub = node.create_publisher(joint_state, "/distill_test/joint_states", 10)
    msg = joint_state(name=["shoulder", "elbow"], position=[0.5, -1.25])
    msg.header.frame_id = "base_link"
    msg.header.stamp.sec = 42
    deadline = time.monotonic() + 15
    while listener.proc.poll() is None and time.monotonic() < deadline:
        pub.publish(msg)
        time.sleep(0.05)
    received = json.loads(listener.lines()[-1])
    assert received == {"frame_id": "base_link", "sec": 42, "name": ["shoulder", "elbow"],
                        "position": [0.5, -1.25]}, "JointState changed on its way across"
    node.destroy_publisher(pub)


def test_trigger_service_served_in_another_process(ros_mod, node, peer):
    server = peer("trigger_server", "~/trigger")
    server.wait_ready()
    trigger = ros_mod.get_interface("std_srvs/srv/Trigger")
    client = node.create_client(trigger, "/peer/trigger_server/trigger")
    assert client.wait_for_service(10.0), "service of the other process never appeared"
    response = client.call(trigger.Request(), 5.0)
    assert response.success is True
    assert response.message == f"triggered by pid {server.proc.pid}"
    second = client.call(trigger.Request(), 5.0)  # sequence numbers advance, still answered
    assert second.message == response.message
    names = node.get_node_names_and_namespaces()
    assert ("trigger_server", "/peer") in names, f"peer node not in the ROS graph: {names}"
    server.lines()
    deadline = time.monotonic() + 5
    while ("trigger_server", "/peer") in names and time.monotonic() < deadline:
        time.sleep(0.05)
        names = node.get_node_names_and_namespaces()
    assert ("trigger_server", "/peer") not in names, "a node that exited stays in the graph"
    node.destroy_client(client)


def _set_gain(ros_mod, client, value):
    srv = ros_mod.get_interface("rcl_interfaces/srv/SetParameters")
    value_msg = ros_mod.get_interface("rcl_interfaces/msg/ParameterValue")(
        type=3, double_value=value)
    param = ros_mod.get_interface("rcl_interfaces/msg/Parameter")(name="gain", value=value_msg)
    return client.call(srv.Request(parameters=[param]), 5.0).results[0]


def test_parameter_set_accepted_and_rejected_across_processes(ros_mod, node, peer):
    server = peer("param_node")
    server.wait_ready()
    set_srv = ros_mod.get_interface("rcl_interfaces/srv/SetParameters")
    get_srv = ros_mod.get_interface("rcl_interfaces/srv/GetParameters")
    list_srv = ros_mod.get_interface("rcl_interfaces/srv/ListParameters")
    setter = node.create_client(set_srv, "/param_node/set_parameters")
    getter = node.create_client(get_srv, "/param_node/get_parameters")
    lister = node.create_client(list_srv, "/param_node/list_parameters")
    for client in (setter, getter, lister):
        assert client.wait_for_service(10.0), f"{client.srv_name} never appeared"

    accepted = _set_gain(ros_mod, setter, 2.5)
    assert accepted.successful, f"valid set rejected: {accepted.reason}"
    rejected = _set_gain(ros_mod, setter, -1.0)
    assert not rejected.successful, "negative gain should be rejected by the callback"
    assert rejected.reason == "gain must be >= 0, got -1.0"

    values = getter.call(get_srv.Request(names=["gain", "mode"]), 5.0).values
    assert values[0].double_value == 2.5, "rejected set must leave the accepted value"
    assert values[1].string_value == "fast"
    names = lister.call(list_srv.Request(), 5.0).result.names
    assert {"gain", "mode"} <= set(names)
    server.lines()


def test_lifecycle_change_state_across_processes(ros_mod, node, peer):
    managed = peer("lifecycle_node")
    managed.wait_ready()
    change = ros_mod.get_interface("lifecycle_msgs/srv/ChangeState")
    get_state = ros_mod.get_interface("lifecycle_msgs/srv/GetState")
    transition = ros_mod.get_interface("lifecycle_msgs/msg/Transition")
    changer = node.create_client(change, "/managed/change_state")
    getter = node.create_client(get_state, "/managed/get_state")
    assert changer.wait_for_service(10.0) and getter.wait_for_service(10.0)

    def state_label():
        return getter.call(get_state.Request(), 5.0).current_state.label

    def request(tid, label=""):
        req = change.Request(transition=transition(id=tid, label=label))
        return changer.call(req, 5.0).success

    assert state_label() == "unconfigured"
    assert not request(transition.TRANSITION_ACTIVATE), "activate from unconfigured must fail"
    assert request(transition.TRANSITION_CONFIGURE)
    assert state_label() == "inactive"
    assert request(0, "activate"), "a transition may be named by label alone"
    assert state_label() == "active"
    assert request(transition.TRANSITION_DEACTIVATE)
    assert request(transition.TRANSITION_CLEANUP)
    assert state_label() == "unconfigured"
    managed.lines()

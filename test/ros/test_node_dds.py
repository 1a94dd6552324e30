"""The Node API on the DDS backend, in one process, against real Cyclone DDS."""

import time

import numpy as np
import pytest

from distill_ros.ros.backend import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "dds", reason="DDS backend tests")


def _spin_until(ros_mod, node, predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        ros_mod.spin_once(node, timeout_sec=0.05)
    return predicate()


@pytest.fixture
def node(ros_mod):
    """A fresh node per test."""
    n = ros_mod.Node("unit", namespace="/t")
    yield n
    n.destroy_node()


def test_numpy_arrays_published_and_received(ros_mod, node):
    multi = ros_mod.get_interface("std_msgs/msg/Float64MultiArray")
    got = []
    node.create_subscription(multi, "cmd", got.append, ros_mod.SENSOR_DATA)
    pub = node.create_publisher(multi, "cmd", ros_mod.SENSOR_DATA)
    msg = multi(data=np.array([1.0, 2.0, 3.0]))
    assert _spin_until(ros_mod, node, lambda: pub.get_subscription_count() > 0)
    assert _spin_until(ros_mod, node, lambda: (pub.publish(msg), bool(got))[1])
    assert got[0].data == [1.0, 2.0, 3.0]
    assert isinstance(msg.data, np.ndarray), "publish must not modify the caller's message"


def test_timer_fires_at_its_period(ros_mod, node):
    ticks = []
    timer = node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    assert _spin_until(ros_mod, node, lambda: len(ticks) >= 5, timeout_s=3.0)
    timer.cancel()
    count = len(ticks)
    ros_mod.spin_once(node, timeout_sec=0.1)
    assert len(ticks) == count, "a canceled timer must not fire"
    gaps = np.diff(ticks)
    assert 0.01 < float(np.median(gaps)) < 0.06, f"timer period off: {gaps}"


def test_parameters_override_type_check_and_callback(ros_mod):
    node = ros_mod.Node("params", parameter_overrides={"rate_hz": 100.0})
    try:
        assert node.declare_parameter("rate_hz", 50.0).value == 100.0, "override wins"
        assert node.declare_parameter("model", "a.onnx").value == "a.onnx"
        node.add_on_set_parameters_callback(
            lambda ps: ros_mod.set_parameters_result(
                all(p.value != "bad.onnx" for p in ps), "bad.onnx is not allowed"))
        ok, wrong_type, rejected = node.set_parameters([
            ros_mod.Parameter("model", value="b.onnx"),
            ros_mod.Parameter("rate_hz", value="fast"),
            ros_mod.Parameter("model", value="bad.onnx")])
        assert ok.successful and node.get_parameter("model").value == "b.onnx"
        assert not wrong_type.successful and "Wrong parameter type" in wrong_type.reason
        assert not rejected.successful and rejected.reason == "bad.onnx is not allowed"
        with pytest.raises(ValueError, match="not declared"):
            node.get_parameter("missing")
    finally:
        node.destroy_node()


def test_overrides_keep_the_declared_type_and_a_raising_validator_refuses(ros_mod):
    node = ros_mod.Node("typed", parameter_overrides={
        "rate_hz": 30, "limits": [0, 1], "names": [], "mode": "fast"})
    try:
        rate = node.declare_parameter("rate_hz", 0.0)
        assert rate.value == 30.0 and isinstance(rate.value, float), "int given for a double"
        assert node.declare_parameter("limits", [0.5]).value == [0.0, 1.0]
        assert node.declare_parameter("names", [""]).value == []
        with pytest.raises(ValueError, match="'mode'.* is STRING but .* declared INTEGER"):
            node.declare_parameter("mode", 1)
        assert node.set_parameters([ros_mod.Parameter("rate_hz", value=40.0)])[0].successful

        def broken(params):
            raise RuntimeError("model file vanished")
        node.add_on_set_parameters_callback(broken)
        (result,) = node.set_parameters([ros_mod.Parameter("rate_hz", value=50.0)])
        assert not result.successful and "RuntimeError: model file vanished" in result.reason
        assert node.get_parameter("rate_hz").value == 40.0
    finally:
        node.destroy_node()


def test_endpoints_announce_user_data_and_qos(ros_mod, node):
    from cyclonedds.builtin import (BuiltinDataReader, BuiltinTopicDcpsParticipant,
                                    BuiltinTopicDcpsPublication, BuiltinTopicDcpsSubscription)
    from cyclonedds.qos import Policy
    from distill_ros.ros._dds.context import get_context

    trigger = ros_mod.get_interface("std_srvs/srv/Trigger")
    node.create_service(trigger, "~/go", lambda req, resp: resp)
    node.create_client(trigger, "~/go")
    node.create_publisher(ros_mod.get_interface("sensor_msgs/msg/JointState"), "js",
                          ros_mod.SENSOR_DATA)
    dp = get_context().participant
    pubs = BuiltinDataReader(dp, BuiltinTopicDcpsPublication).read(N=500)
    subs = BuiltinDataReader(dp, BuiltinTopicDcpsSubscription).read(N=500)
    ours = [e for e in pubs + subs  # the DCPS* builtin readers are local, never on the wire
            if e.participant_key == dp.guid and not e.topic_name.startswith("DCPS")]
    by_topic = {(e.topic_name, e in pubs): e for e in ours}
    for endpoint in ours:
        assert endpoint.qos[Policy.Userdata].data, f"empty USER_DATA on {endpoint.topic_name}"
    rq_writer = by_topic[("rq/t/unit/goRequest", True)]
    assert rq_writer.qos[Policy.Userdata].data.startswith(b"clientid=")
    assert by_topic[("rr/t/unit/goReply", True)].qos[Policy.Userdata].data.startswith(
        b"serviceid=")
    assert by_topic[("rt/t/js", True)].type_name == "sensor_msgs::msg::dds_::JointState_"
    assert by_topic[("rt/t/js", True)].qos[Policy.Reliability] == Policy.Reliability.BestEffort
    assert by_topic[("rt/t/js", True)].qos[Policy.DataRepresentation] == (
        Policy.DataRepresentation(use_cdrv0_representation=True)), "writers offer XCDR1 only"
    rosout = by_topic[("rt/rosout", True)]
    assert rosout.qos[Policy.Durability] == Policy.Durability.TransientLocal
    assert rosout.qos[Policy.History] == Policy.History.KeepLast(depth=1000)
    participants = BuiltinDataReader(dp, BuiltinTopicDcpsParticipant).read(N=100)
    me = [p for p in participants if p.key == dp.guid][0]
    assert me.qos[Policy.Userdata].data == b"enclave=/;"


def test_discovery_info_lists_node_and_its_writers(ros_mod, node):
    from distill_ros.ros._dds.context import get_context

    ctx = get_context()
    pub = node.create_publisher(ros_mod.get_interface("std_msgs/msg/String"), "talk", 10)
    assert ("unit", "/t") in node.get_node_names_and_namespaces()
    name, namespace, _readers, writers = node.graph_entry()
    assert pub.guid in writers
    gid = ctx.graph.gid(pub.guid)
    size = 24 if ctx.types.distro in ("foxy", "galactic", "humble") else 16
    assert len(gid.data) == size, f"Gid on {ctx.types.distro} is {size} bytes"
    assert gid.data == pub.guid + bytes(size - 16), "Gid is the DDS GUID, zero padded"


def test_client_times_out_without_server(ros_mod, node):
    trigger = ros_mod.get_interface("std_srvs/srv/Trigger")
    client = node.create_client(trigger, "/nobody/home")
    assert not client.wait_for_service(0.2)
    with pytest.raises(TimeoutError):
        client.call(trigger.Request(), 0.2)


def test_service_in_same_process_and_call_async(ros_mod, node):
    set_bool = ros_mod.get_interface("std_srvs/srv/SetBool")

    def on_call(request, response):
        response.success = request.data
        response.message = "on" if request.data else "off"
        return response
    node.create_service(set_bool, "enable", on_call)
    client = node.create_client(set_bool, "enable")
    with ros_mod.spin_in_background(node):
        assert client.wait_for_service(5.0)
        assert client.call(set_bool.Request(data=True), 5.0).message == "on"
        future = client.call_async(set_bool.Request(data=False))
        assert future.result(timeout=5.0).message == "off"


def test_remapped_topic_carries_messages(ros_mod, make_node, monkeypatch):
    """`-r talker:chatter:=/robot/chatter` moves only talker's topic, on the wire too."""
    from distill_ros.ros._dds import ros_args

    monkeypatch.setattr(ros_args, "_GLOBAL", ros_args.parse(
        ["--ros-args", "-r", "talker:chatter:=/robot/chatter"]))
    talker, listener = make_node("talker", namespace="/t"), make_node("listener")
    string = ros_mod.get_interface("std_msgs/msg/String")
    got, unmapped = [], []
    pub = talker.create_publisher(string, "chatter", 10)
    listener.create_subscription(string, "/robot/chatter", got.append, 10)
    listener.create_subscription(string, "/t/chatter", unmapped.append, 10)
    assert talker.resolve_topic_name("chatter") == "/robot/chatter"
    assert talker.resolve_topic_name("chatter", only_expand=True) == "/t/chatter"
    assert listener.resolve_topic_name("chatter") == "/chatter"
    assert _spin_until(ros_mod, listener, lambda: pub.get_subscription_count() > 0)
    assert _spin_until(ros_mod, listener,
                       lambda: (pub.publish(string(data="hi")), bool(got))[1])
    assert got[0].data == "hi" and not unmapped


def test_parameter_events_announce_declares_and_sets(ros_mod, make_node):
    """Like rclpy, every node reports declares and accepted sets on /parameter_events."""
    event_cls = ros_mod.get_interface("rcl_interfaces/msg/ParameterEvent")
    watcher = make_node("event_watcher")
    events = []
    watcher.create_subscription(event_cls, "/parameter_events", events.append,
                                ros_mod.PARAMETER_EVENTS)
    node = make_node("evented", namespace="/t")
    assert _spin_until(ros_mod, watcher,
                       lambda: node._param_events.get_subscription_count() > 0)
    node.declare_parameter("gain", 2.0)
    node.add_on_set_parameters_callback(
        lambda ps: ros_mod.set_parameters_result(all(p.value < 10 for p in ps), "too big"))
    assert not node.set_parameters([ros_mod.Parameter("gain", value=50.0)])[0].successful
    assert node.set_parameters([ros_mod.Parameter("gain", value=3.0)])[0].successful

    def ours():  # (the node's own use_sim_time declare is announced too, as in rclpy)
        return [e for e in events if e.node == "/t/evented" and any(
            p.name == "gain" for p in e.new_parameters + e.changed_parameters)]
    assert _spin_until(ros_mod, watcher, lambda: len(ours()) >= 2)
    new, changed = ours()[:2]
    assert [(p.name, p.value.double_value) for p in new.new_parameters] == [("gain", 2.0)]
    assert [(p.name, p.value.double_value) for p in changed.changed_parameters] == [
        ("gain", 3.0)], "a refused set must not be announced"
    assert changed.stamp.sec > 0


def test_use_sim_time_follows_the_clock_topic(ros_mod, make_node):
    """use_sim_time (declared on every node, as in rclpy) makes now() follow /clock."""
    clock_cls = ros_mod.get_interface("rosgraph_msgs/msg/Clock")
    time_cls = ros_mod.get_interface("builtin_interfaces/msg/Time")
    sim = make_node("sim_clock")
    node = make_node("sim_timed", parameter_overrides={"use_sim_time": True})
    pub = sim.create_publisher(clock_cls, "/clock", ros_mod.SENSOR_DATA)
    assert node.get_clock().now().nanoseconds == 0, "sim time starts at 0"

    def clock_reads(sec):  # publish /clock at sec s + 5 ns; has the node taken it?
        pub.publish(clock_cls(clock=time_cls(sec=sec, nanosec=5)))
        return node.get_clock().now().nanoseconds == sec * 1_000_000_000 + 5

    assert _spin_until(ros_mod, node, lambda: clock_reads(42)), "now() ignores /clock"
    assert _spin_until(ros_mod, node, lambda: clock_reads(43)), "now() stopped following"
    assert node.set_parameters([ros_mod.Parameter("use_sim_time", value=False)])[0] \
        .successful
    assert abs(node.get_clock().now().nanoseconds / 1e9 - time.time()) < 5.0
    assert not node.set_parameters([ros_mod.Parameter("use_sim_time", value="yes")])[0] \
        .successful, "use_sim_time only takes a bool"

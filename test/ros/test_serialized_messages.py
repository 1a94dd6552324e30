"""Serialised messages on the backend under test: the bytes decode to the same message.

``ros.serialize_message``/``deserialize_message`` and ``Publisher.publish(bytes)`` behave as
rclpy's; :class:`Float64Tail` (what policy_inference sends its commands with) gives exactly
the bytes of the whole message, and a reader in another process decodes them to it. The real
``ros2 topic echo`` of such bytes is in ``test_ros2_cli.py``.
"""

import json
import math
import time

import numpy as np
import pytest

from conftest import importorskip_middleware, TEST_BACKEND

importorskip_middleware()

F64 = "std_msgs/msg/Float64MultiArray"
NAMES = ["ee_vx", "ee_vy", "ee_vz", "gripper_opening"]
TRICKY = [0.0, -0.0, 1e-310, -1.5e308, math.inf, -math.inf, math.nan, 0.1]


def _labelled(names, values):
    from distill_ros.nodes.command_output import labelled_array
    return labelled_array(names, values)


def _hex(values):
    return [float(v).hex() for v in values]


def test_serialize_and_deserialize_round_trip(ros_mod):
    msg = _labelled(NAMES, [0.5, -0.25, 1e-300, 0.09])
    data = ros_mod.serialize_message(msg)
    assert isinstance(data, bytes) and data[:2] == b"\x00\x01", data[:4]  # CDR little endian
    back = ros_mod.deserialize_message(data, type(msg))
    assert [d.label for d in back.layout.dim] == NAMES
    assert list(back.data) == [0.5, -0.25, 1e-300, 0.09]


@pytest.mark.parametrize("names", [NAMES, []], ids=["labelled", "data_only"])
def test_float64_tail_gives_the_bytes_of_the_whole_message(ros_mod, names):
    from distill_ros.ros.cdr import Float64Tail

    msg = _labelled(names, [0.0] * len(TRICKY))
    tail = Float64Tail(msg)
    assert list(msg.data) == [0.0] * len(TRICKY), "building the tail changed the message"
    rng = np.random.default_rng(0)
    for values in (TRICKY, rng.normal(size=len(TRICKY)) * 1e3, np.zeros(len(TRICKY))):
        reference = _labelled(names, values)
        assert tail.serialize(np.asarray(values)) == ros_mod.serialize_message(reference)
        back = ros_mod.deserialize_message(tail.serialize(values), type(msg))
        assert _hex(back.data) == _hex(values)
        assert [d.label for d in back.layout.dim] == names


def test_float64_tail_refuses_a_sequence_that_is_not_last(ros_mod):
    from distill_ros.ros.cdr import Float64Tail

    joint_state = ros_mod.get_interface("sensor_msgs/msg/JointState")
    msg = joint_state(name=["a"], position=[0.5], velocity=[0.0], effort=[0.0])
    with pytest.raises(ValueError, match="do not end with 'position'"):
        Float64Tail(msg, "position")
    assert list(msg.position) == [0.5]


def test_published_bytes_are_received_as_the_message_in_another_process(
        ros_mod, make_node, peer):
    from distill_ros.ros.cdr import Float64Tail

    listener = peer("array_listener", "/distill_test/commands")
    listener.wait_ready()
    node = make_node("bytes_talker")
    msg = _labelled(NAMES, [0.0] * 4)
    pub = node.create_publisher(type(msg), "/distill_test/commands", 10)
    values = [0.25, -0.0, math.nan, -1e-310]
    data = Float64Tail(msg).serialize(values)
    deadline = time.monotonic() + 15
    while listener.proc.poll() is None and time.monotonic() < deadline:
        pub.publish(data)
        time.sleep(0.05)
    received = json.loads(listener.lines()[-1])
    assert received == {"labels": NAMES, "data": _hex(values)}, "bytes changed on the way"


@pytest.mark.skipif(TEST_BACKEND != "dds", reason="the DDS backend's own check (rclpy hands "
                    "bytes to rmw unchecked)")
def test_dds_publish_refuses_bytes_that_are_not_whole_words(ros_mod, make_node):
    node = make_node("bad_bytes")
    pub = node.create_publisher(ros_mod.get_interface(F64), "/distill_test/bad", 10)
    with pytest.raises(ValueError, match="whole 4-byte words"):
        pub.publish(b"\x00\x01\x00\x00\x00")
    with pytest.raises(TypeError, match="or its serialised bytes"):
        pub.publish("not a message")

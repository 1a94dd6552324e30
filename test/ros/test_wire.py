"""Bytes on the wire equal an independent CDR encoding (rosbags) of the same message."""

import struct

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the wire checks need rosbags: pip install "
                    "'distill_ros[dds]'")
pytest.importorskip("cyclonedds", reason="the wire checks need cyclonedds: pip install "
                    "'distill_ros[dds]'")
from rosbags.typesys import get_types_from_msg, get_typestore, Stores  # noqa: E402

from distill_ros.ros._dds.typegen import (get_generator, load_srv_definitions,  # noqa: E402
                                          prepare)
from distill_ros.ros.names import (dds_service_topic_names,  # noqa: E402
                                   dds_service_type_names,
                                   dds_topic_name, dds_type_name, expand_name)

XCDR1_LE = b"\x00\x01\x00\x00"


@pytest.fixture(scope="module")
def gen():
    """Our generated types (Humble definitions)."""
    return get_generator("humble")


@pytest.fixture(scope="module")
def store():
    """An independent rosbags typestore, with the Trigger/SetBool services registered."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    # rosidl gives an empty request one uint8 placeholder member; say so independently here.
    ts.register(get_types_from_msg("uint8 structure_needs_at_least_one_member",
                                   "std_srvs/msg/Trigger_Request"))
    ts.register(get_types_from_msg("bool success\nstring message",
                                   "std_srvs/msg/Trigger_Response"))
    ts.register(get_types_from_msg("bool data", "std_srvs/msg/SetBool_Request"))
    return ts


def _ours(msg) -> bytes:
    # what Publisher.publish writes: the type's default (XCDR1 for @final), native = LE here
    return prepare(msg).serialize()


def test_joint_state_bytes_match_rosbags(gen, store):
    ours = gen.struct("sensor_msgs/msg/JointState")(
        name=["j1", "joint_two", "j3"], position=[0.1, -2.0, 3.5], velocity=[1.0, 2.0, 3.0],
        effort=[])
    ours.header.stamp.sec, ours.header.stamp.nanosec = 1700000000, 123
    ours.header.frame_id = "base"
    t = store.types
    ref = t["sensor_msgs/msg/JointState"](
        header=t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=1700000000, nanosec=123), frame_id="base"),
        name=["j1", "joint_two", "j3"], position=np.array([0.1, -2.0, 3.5]),
        velocity=np.array([1.0, 2.0, 3.0]), effort=np.array([], dtype=np.float64))
    expected = bytes(store.serialize_cdr(ref, "sensor_msgs/msg/JointState"))
    assert expected[:4] == XCDR1_LE
    assert _ours(ours) == expected, "JointState CDR differs from rosbags"
    back = gen.struct("sensor_msgs/msg/JointState").deserialize(expected)
    assert back.name == ["j1", "joint_two", "j3"] and back.position == [0.1, -2.0, 3.5]


def test_float64_multi_array_bytes_match_rosbags(gen, store):
    layout_cls = gen.struct("std_msgs/msg/MultiArrayLayout")
    dim_cls = gen.struct("std_msgs/msg/MultiArrayDimension")
    ours = gen.struct("std_msgs/msg/Float64MultiArray")(
        layout=layout_cls(dim=[dim_cls(label="joints", size=3, stride=3)], data_offset=1),
        data=np.array([0.25, -0.5, 8.0]))
    t = store.types
    ref = t["std_msgs/msg/Float64MultiArray"](
        layout=t["std_msgs/msg/MultiArrayLayout"](
            dim=[t["std_msgs/msg/MultiArrayDimension"](label="joints", size=3, stride=3)],
            data_offset=1),
        data=np.array([0.25, -0.5, 8.0]))
    assert _ours(ours) == bytes(store.serialize_cdr(ref, "std_msgs/msg/Float64MultiArray"))


def _header(guid: int, seq: int) -> bytes:
    return struct.pack("<Qq", guid, seq)


def test_trigger_request_and_reply_bytes(gen, store):
    trigger = gen.service("std_srvs/srv/Trigger")
    guid, seq = 0x0123456789ABCDEF, 7
    request = trigger._wire.request(guid_=guid, seq_=seq, body=trigger.Request())
    ref_req = store.types["std_srvs/msg/Trigger_Request"](structure_needs_at_least_one_member=0)
    body = bytes(store.serialize_cdr(ref_req, "std_srvs/msg/Trigger_Request"))
    assert _ours(request) == XCDR1_LE + _header(guid, seq) + body[4:]

    reply = trigger._wire.response(guid_=guid, seq_=seq,
                                   body=trigger.Response(success=True, message="done"))
    ref_rep = store.types["std_srvs/msg/Trigger_Response"](success=True, message="done")
    body = bytes(store.serialize_cdr(ref_rep, "std_srvs/msg/Trigger_Response"))
    assert _ours(reply) == XCDR1_LE + _header(guid, seq) + body[4:]
    assert _ours(reply)[4:20] == bytes.fromhex("efcdab89674523010700000000000000")


def test_set_bool_request_bytes(gen, store):
    set_bool = gen.service("std_srvs/srv/SetBool")
    request = set_bool._wire.request(guid_=5, seq_=1, body=set_bool.Request(data=True))
    ref = store.types["std_srvs/msg/SetBool_Request"](data=True)
    body = bytes(store.serialize_cdr(ref, "std_srvs/msg/SetBool_Request"))
    assert _ours(request) == XCDR1_LE + _header(5, 1) + body[4:]


def test_types_are_final_keyless_xcdr1(gen):
    from cyclonedds.idl._type_normalize import get_idl_annotations
    for name in ("sensor_msgs/msg/JointState", "rmw_dds_common/msg/ParticipantEntitiesInfo",
                 "visualization_msgs/msg/MarkerArray", "sensor_msgs/msg/PointCloud2"):
        cls = gen.struct(name)
        cls.__idl__.populate()
        assert get_idl_annotations(cls).get("extensibility", "final") == "final", name
        assert cls.__idl__.keyless, f"{name} must be keyless"
        assert cls.__idl__.default_version == 1, f"{name} must serialise as XCDR1"


def test_mangled_names():
    assert dds_topic_name("/chatter") == "rt/chatter"
    assert dds_topic_name("/robot/joint_states") == "rt/robot/joint_states"
    assert dds_service_topic_names("/add") == ("rq/addRequest", "rr/addReply")
    assert dds_service_topic_names("/ns/node/get_parameters") == (
        "rq/ns/node/get_parametersRequest", "rr/ns/node/get_parametersReply")
    assert dds_type_name("sensor_msgs/msg/JointState") == "sensor_msgs::msg::dds_::JointState_"
    assert dds_service_type_names("std_srvs/srv/Trigger") == (
        "std_srvs::srv::dds_::Trigger_Request_", "std_srvs::srv::dds_::Trigger_Response_")
    assert expand_name("chatter", "talker", "/ns") == "/ns/chatter"
    assert expand_name("~/state", "talker", "/ns") == "/ns/talker/state"
    assert expand_name("~/state", "talker", "/") == "/talker/state"
    assert expand_name("/abs", "talker", "/ns") == "/abs"
    with pytest.raises(ValueError, match="invalid topic"):
        expand_name("bad name", "talker", "/")


def test_generated_class_names_follow_the_rules(gen):
    pose = gen.struct("geometry_msgs/msg/Pose")
    assert pose.__idl_typename__ == "geometry_msgs::msg::dds_::Pose_"
    trigger = gen.service("std_srvs/srv/Trigger")
    assert trigger._wire.request.__idl_typename__ == "std_srvs::srv::dds_::Trigger_Request_"
    assert trigger._wire.response.__idl_typename__ == "std_srvs::srv::dds_::Trigger_Response_"


def test_gid_size_follows_distro():
    humble = get_generator("humble").struct("rmw_dds_common/msg/Gid")()
    jazzy = get_generator("jazzy").struct("rmw_dds_common/msg/Gid")()
    assert len(humble.data) == 24 and len(jazzy.data) == 16


def test_every_srv_file_parses_into_request_and_response():
    defs = load_srv_definitions()
    for name in ("std_srvs/srv/Trigger", "rcl_interfaces/srv/SetParameters",
                 "lifecycle_msgs/srv/ChangeState", "lifecycle_msgs/srv/GetAvailableTransitions"):
        assert f"{name}_Request" in defs and f"{name}_Response" in defs, name
    gen = get_generator("humble")
    for key in defs:
        if key.endswith("_Request"):
            srv = gen.service(key[:-len("_Request")])
            assert srv.Request() is not None and srv.Response() is not None


def test_declared_msg_defaults_hold_as_in_rclpy(gen):
    pose = gen.struct("geometry_msgs/msg/Pose")()
    assert (pose.orientation.x, pose.orientation.w) == (0.0, 1.0), "identity rotation"
    quat = gen.struct("geometry_msgs/msg/Quaternion")
    assert quat().w == 1.0 and quat(w=0.5).w == 0.5

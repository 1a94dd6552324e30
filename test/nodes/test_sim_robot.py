"""sim_robot in its own process: topics a ros2_control robot has, reset, parameters."""

import time

import numpy as np

from nodes.conftest import SIM_PARAMS

ACTIONS = ["ee_vx", "ee_vy", "ee_vz", "gripper_opening"]


def test_sim_robot_publishes_state_obeys_commands_and_resets(tester, start_node):
    joint_states = tester.record("sensor_msgs/msg/JointState", "/joint_states")
    features = tester.record("std_msgs/msg/Float64MultiArray", "/sim_robot/features")
    pose = tester.record("geometry_msgs/msg/PoseStamped", "/sim_robot/object_pose")
    markers = tester.record("visualization_msgs/msg/MarkerArray", "/sim_robot/markers")
    points = tester.record("sensor_msgs/msg/PointCloud2", "/sim_robot/points",
                           tester.ros.SENSOR_DATA)
    command = tester.publisher("std_msgs/msg/Float64MultiArray",
                               "/forward_command_controller/commands")
    sim = start_node("sim_robot", "--params-file", str(SIM_PARAMS))
    reply = tester.call("std_srvs/srv/Trigger", "/sim_robot/reset")
    assert reply.success and "seed 1" in reply.message, reply.message
    # messages of the reset episode only: one sent before the reset may still be in flight
    reset = time.monotonic() + 0.1
    start, _ = joint_states.wait_for(lambda m: True, reset, 10.0, f"joint_states\n{sim.log()}")
    features.wait_for(lambda m: True, reset, 10.0, f"features\n{sim.log()}")  # own topic
    labels = [d.label for d in features.items[-1][1].layout.dim]
    assert labels[0] == "finger_opening" and "contact_right" in labels, labels
    assert pose.items, "no object pose"
    _, cloud = points.wait_for(lambda m: m.width > 0, reset, 10.0, f"a point cloud\n{sim.log()}")
    xyz = np.frombuffer(bytes(cloud.data), "<f4").reshape(-1, 3)
    assert [f.name for f in cloud.fields] == ["x", "y", "z"] and cloud.point_step == 12
    assert xyz.shape[0] == cloud.width and cloud.header.frame_id == "world"
    position = pose.items[-1][1].pose.position
    named = dict(zip(labels, features.items[-1][1].data))
    half = np.array([named[f"obj_half_{axis}"] for axis in "xyz"])
    inside = np.all(np.abs(xyz - [position.x, position.y, position.z]) <= half + 0.005, axis=1)
    assert inside.sum() > 20, f"{inside.sum()} of {len(xyz)} points on the cube's faces"
    # RViz: the scene's shapes; the object marker sits on the object pose, sized by it
    _, array = markers.wait_for(lambda m: len(m.markers) == 4, reset, 10.0,
                                f"markers\n{sim.log()}")
    cube = {m.id: m for m in array.markers}[0]
    assert cube.type == cube.CUBE and cube.header.frame_id == "world"
    assert np.allclose([cube.scale.x, cube.scale.y, cube.scale.z], 2 * half, atol=1e-6)
    assert abs(cube.pose.position.z - position.z) < 0.02, (cube.pose.position, position)

    from distill_ros.nodes.command_output import labelled_array
    z0 = dict(zip(joint_states.items[-1][1].name, joint_states.items[-1][1].position))["ee_z"]
    moved = time.monotonic()
    while time.monotonic() - moved < 1.0:  # 0.2 m/s up, by name, in a shuffled order
        command.publish(labelled_array(["gripper_opening", "ee_vz", "ee_vx", "ee_vy"],
                                       [0.09, 0.2, 0.0, 0.0]))
        time.sleep(0.03)
    last = joint_states.items[-1][1]
    z1 = dict(zip(last.name, last.position))["ee_z"]
    assert z1 - z0 > 0.05, f"palm did not rise: {z0:.3f} -> {z1:.3f} m"
    rate = len(joint_states.since(moved)) / (time.monotonic() - moved)
    assert rate > 15, f"joint_states at {rate:.1f} Hz (30 Hz expected)"

    result = tester.set_param("/sim_robot", "task", "duck")
    assert not result.successful and "restart" in result.reason, result
    result = tester.set_param("/sim_robot", "command_names", ["ee_vx", "elbow"])
    assert not result.successful and "ee_vx" in result.reason, result
    assert tester.set_param("/sim_robot", "command_names", ACTIONS[::-1]).successful

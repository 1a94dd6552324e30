"""Dressing demo: sim_robot runs the dressing scene, policy_inference the point-cloud student.

    ros2 launch distill_ros dressing_demo.launch.py model_path:=runs/d/export/policy.onnx

sim_robot publishes the labelled camera cloud (``/sim_robot/points``: x, y, z, label), the
gripper's joints and the privileged features; policy_inference preprocesses the cloud as in
training and commands the gripper's twist. RViz (``rviz:=true``, the default where rviz2 is
installed) shows the cloud coloured by label, the arm's polyline, the garment and the
dressed ratio (``rviz/dressing.rviz``); ``rviz:=true`` without rviz2 stops the launch with a
message before any node starts.
"""

import os

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from ament_index_python.packages import PackageNotFoundError
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _has_rviz2():
    """Whether the rviz2 package is installed beside this ROS 2."""
    try:
        return bool(get_package_prefix("rviz2"))
    except PackageNotFoundError:
        return False


def _refuse(why, reason):
    return [LogInfo(msg=why), Shutdown(reason=reason)]


def _dressing_nodes(context):
    share = get_package_share_directory("distill_ros")
    wanted = LaunchConfiguration("rviz").perform(context).strip().lower()
    if wanted not in ("true", "false"):
        return _refuse(f"rviz must be true or false, got {wanted!r}", "bad rviz argument")
    if wanted == "true" and not _has_rviz2():
        return _refuse("rviz:=true but rviz2 is not installed (apt install "
                       "ros-$ROS_DISTRO-rviz2), or launch with rviz:=false",
                       "rviz2 is not installed")
    sim = Node(package="distill_ros", executable="sim_robot", name="sim_robot",
               output="screen",
               parameters=[os.path.join(share, "config", "dressing_sim_robot_params.yaml"),
                           {"task": LaunchConfiguration("task")}])
    student = Node(package="distill_ros", executable="policy_inference",
                   name="policy_inference", output="screen",
                   parameters=[os.path.join(share, "config",
                                            "dressing_policy_inference_params.yaml"),
                               {"model_path": LaunchConfiguration("model_path")}])
    view = Node(package="rviz2", executable="rviz2", name="rviz2",
                arguments=["-d", os.path.join(share, "rviz", "dressing.rviz")])
    return [sim, student] + ([view] if wanted == "true" else [])


def generate_launch_description():
    """sim_robot (dressing) + policy_inference (+ rviz2 with rviz/dressing.rviz)."""
    return LaunchDescription([
        DeclareLaunchArgument("model_path", description="the exported dressing student"),
        DeclareLaunchArgument("task", default_value="f1e1",
                              description="pose range f<i>e<j>, optionally @<garment>"),
        DeclareLaunchArgument("rviz", default_value=str(_has_rviz2()).lower(),
                              description="start rviz2 (default: true where it is installed)"),
        OpaqueFunction(function=_dressing_nodes),
    ])

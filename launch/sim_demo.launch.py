"""Sim + inference demo: sim_robot (pybullet grasp scene) and policy_inference, with RViz.

    ros2 launch distill_ros sim_demo.launch.py model_path:=runs/x/export/policy.onnx

RViz starts by default only where rviz2 is installed; ``rviz:=true`` without it stops
the launch with a message before any node starts.
"""

import os

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from ament_index_python.packages import PackageNotFoundError
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def rviz_installed():
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return False
    return True


def rviz_check(context):
    """``(rviz wanted, [])``, or ``(False, actions that stop the launch and say why)``.

    Shared with the other demo launch files (humanoid_demo.launch.py loads this file).
    """
    rviz = LaunchConfiguration("rviz").perform(context).strip().lower()
    if rviz not in ("true", "false"):
        return False, [LogInfo(msg=f"rviz must be true or false, got {rviz!r}"),
                       Shutdown(reason="bad rviz argument")]
    if rviz == "true" and not rviz_installed():
        return False, [LogInfo(msg="rviz:=true but rviz2 is not installed (apt install "
                                   "ros-$ROS_DISTRO-rviz2), or launch with rviz:=false"),
                       Shutdown(reason="rviz2 is not installed")]
    return rviz == "true", []


def _nodes(context):
    share = get_package_share_directory("distill_ros")
    config = os.path.join(share, "config")
    rviz, stop = rviz_check(context)
    if stop:
        return stop
    actions = [
        Node(package="distill_ros", executable="sim_robot", name="sim_robot", output="screen",
             parameters=[os.path.join(config, "sim_robot_params.yaml"),
                         {"task": LaunchConfiguration("task")}]),
        Node(package="distill_ros", executable="policy_inference", name="policy_inference",
             output="screen",
             parameters=[os.path.join(config, "policy_inference_params.yaml"),
                         {"model_path": LaunchConfiguration("model_path")}]),
    ]
    if rviz:
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                            arguments=["-d", os.path.join(share, "rviz", "distill.rviz")]))
    return actions


def generate_launch_description():
    """sim_robot + policy_inference (+ rviz2 with rviz/distill.rviz when rviz:=true)."""
    return LaunchDescription([
        DeclareLaunchArgument("model_path", description="the exported policy.onnx"),
        DeclareLaunchArgument("task", default_value="cube", description="grasp object"),
        DeclareLaunchArgument("rviz", default_value="true" if rviz_installed() else "false",
                              description="start rviz2 (default: true where it is installed)"),
        OpaqueFunction(function=_nodes),
    ])

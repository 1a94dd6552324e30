"""Humanoid demo: sim_robot (DeepMimic humanoid), motion_command and policy_inference, + RViz.

    ros2 launch distill_ros humanoid_demo.launch.py model_path:=runs/h/export/policy.onnx

motion_command plays clip ``task`` as the masked command in ``mode`` (switch it live:
``ros2 param set /motion_command mode upper_body``), the student tracks it, and RViz shows
the character's key bodies (blue) against the clip's (orange). RViz starts by default
only where rviz2 is installed; ``rviz:=true`` without it stops the launch with a message.
"""

import importlib.util
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _sim_demo():
    """sim_demo.launch.py beside this file: its RViz checks are shared, not copied."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim_demo.launch.py")
    spec = importlib.util.spec_from_file_location("distill_ros_sim_demo_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nodes(context):
    share = get_package_share_directory("distill_ros")
    config = os.path.join(share, "config")
    rviz, stop = _sim_demo().rviz_check(context)
    if stop:
        return stop
    task = LaunchConfiguration("task")
    actions = [
        Node(package="distill_ros", executable="sim_robot", name="sim_robot", output="screen",
             parameters=[os.path.join(config, "humanoid_sim_robot_params.yaml"),
                         {"task": task}]),
        Node(package="distill_ros", executable="motion_command", name="motion_command",
             output="screen",
             parameters=[os.path.join(config, "motion_command_params.yaml"),
                         {"clip": task, "mode": LaunchConfiguration("mode")}]),
        Node(package="distill_ros", executable="policy_inference", name="policy_inference",
             output="screen",
             parameters=[os.path.join(config, "humanoid_policy_inference_params.yaml"),
                         {"model_path": LaunchConfiguration("model_path")}]),
    ]
    if rviz:
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                            arguments=["-d", os.path.join(share, "rviz", "humanoid.rviz")]))
    return actions


def generate_launch_description():
    """sim_robot + motion_command + policy_inference (+ rviz2 with rviz/humanoid.rviz)."""
    return LaunchDescription([
        DeclareLaunchArgument("model_path", description="the exported humanoid policy.onnx"),
        DeclareLaunchArgument("task", default_value="walk",
                              description="clip the sim plays and motion_command commands"),
        DeclareLaunchArgument("mode", default_value="full",
                              description="command mode (tasks/humanoid/commands.py MODES)"),
        DeclareLaunchArgument("rviz", default_value="true" if _sim_demo().rviz_installed()
                              else "false",
                              description="start rviz2 (default: true where it is installed)"),
        OpaqueFunction(function=_nodes),
    ])

"""Sim + inference demo: sim_robot (pybullet grasp scene) and policy_inference, with RViz.

    ros2 launch distill_ros sim_demo.launch.py model_path:=runs/x/export/policy.onnx
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    """sim_robot + policy_inference (+ rviz2 with rviz/distill.rviz when rviz:=true)."""
    share = get_package_share_directory("distill_ros")
    config = os.path.join(share, "config")
    return LaunchDescription([
        DeclareLaunchArgument("model_path", description="the exported policy.onnx"),
        DeclareLaunchArgument("task", default_value="cube", description="grasp object"),
        DeclareLaunchArgument("rviz", default_value="true", description="start rviz2"),
        Node(package="distill_ros", executable="sim_robot", name="sim_robot", output="screen",
             parameters=[os.path.join(config, "sim_robot_params.yaml"),
                         {"task": LaunchConfiguration("task")}]),
        Node(package="distill_ros", executable="policy_inference", name="policy_inference",
             output="screen",
             parameters=[os.path.join(config, "policy_inference_params.yaml"),
                         {"model_path": LaunchConfiguration("model_path")}]),
        Node(package="rviz2", executable="rviz2", name="rviz2",
             arguments=["-d", os.path.join(share, "rviz", "distill.rviz")],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])

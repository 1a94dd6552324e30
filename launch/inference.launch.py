"""Inference only: policy_inference driving a ros2_control forward command controller.

    ros2 launch distill_ros inference.launch.py model_path:=/path/to/policy.onnx
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    """policy_inference with config/policy_inference_params.yaml and the model path."""
    config = os.path.join(get_package_share_directory("distill_ros"), "config")
    return LaunchDescription([
        DeclareLaunchArgument("model_path", description="the exported policy.onnx"),
        Node(package="distill_ros", executable="policy_inference", name="policy_inference",
             output="screen",
             parameters=[os.path.join(config, "policy_inference_params.yaml"),
                         {"model_path": LaunchConfiguration("model_path")}]),
    ])

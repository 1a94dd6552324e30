"""Training: distill_trainer, started and watched with ros2 services, /diagnostics and RViz.

    ros2 launch distill_ros training.launch.py config_path:=config/grasp_quick.yaml
    ros2 service call /distill_trainer/start std_srvs/srv/Trigger
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    """distill_trainer with config/distill_trainer_params.yaml."""
    config = os.path.join(get_package_share_directory("distill_ros"), "config")
    return LaunchDescription([
        DeclareLaunchArgument("config_path", description="pipeline YAML"),
        DeclareLaunchArgument("run_dir", default_value="", description="run folder"),
        # Ctrl-C: the trainer waits for the running stage to save (up to a minute); launch
        # would otherwise escalate to SIGTERM after 5 s and SIGKILL 5 s later
        Node(package="distill_ros", executable="distill_trainer", name="distill_trainer",
             output="screen", sigterm_timeout="60", sigkill_timeout="10",
             parameters=[os.path.join(config, "distill_trainer_params.yaml"),
                         {"config_path": LaunchConfiguration("config_path"),
                          "run_dir": LaunchConfiguration("run_dir")}]),
    ])

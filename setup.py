"""ament_python build script: installs the package the way `ros2 run` and `ros2 launch` expect."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "distill_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    package_data={PACKAGE: ["ros/srv/*.srv", "tasks/assets/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
    ],
    python_requires=">=3.10",
    # torch is deliberately unpinned here: CI and setup pin the CPU build themselves.
    install_requires=[
        "numpy>=1.24",
        "pyyaml>=6",
        "gymnasium>=0.29",
        "pybullet>=3.2.5",
        "stable-baselines3>=2.2",
        "torch>=2.2",
        "onnx>=1.15",
        "onnxruntime>=1.17",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
    ],
    extras_require={
        "dds": ["cyclonedds==11.0.1", "rosbags>=0.9.20"],
        "pointcloud": ["open3d>=0.17"],
        "gpu": ["onnxruntime-gpu>=1.17"],
        "isaacgym": ["isaacgym-stubs==1.1rc4"],  # types only: Isaac Gym is an NVIDIA download
        "ray": ["ray[default]>=2.9"],  # [default]: the dashboard
        "test": ["pytest>=7", "flake8>=6", "pydocstyle>=6"],
    },
    zip_safe=True,
    maintainer="distill_ros maintainers",
    maintainer_email="maintainers@distill-ros.invalid",
    description="Distil many robot policies into one ONNX student and run it on ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "distill-ros = distill_ros.cli:main",
            "policy_inference = distill_ros.nodes.policy_inference:main",
            "sim_robot = distill_ros.nodes.sim_robot:main",
            "motion_command = distill_ros.nodes.motion_command:main",
            "distill_trainer = distill_ros.nodes.distill_trainer:main",
        ],
    },
)

"""Which middleware is underneath: real ``rclpy`` when importable, else Cyclone DDS.

``DISTILL_ROS_BACKEND=dds`` or ``=rclpy`` forces the choice (e.g. to run the
DDS backend on a machine with ROS 2 installed).
"""

import importlib.util
import os

BACKENDS = ("rclpy", "dds")


def select_backend() -> str:
    """Return ``"rclpy"`` or ``"dds"`` for this process."""
    forced = os.environ.get("DISTILL_ROS_BACKEND", "").strip().lower()
    if forced and forced not in BACKENDS:
        raise ValueError(f"DISTILL_ROS_BACKEND must be one of {list(BACKENDS)}, got {forced!r}")
    if forced == "rclpy":
        if importlib.util.find_spec("rclpy") is None:
            raise ImportError("DISTILL_ROS_BACKEND=rclpy but rclpy is not importable: "
                              "source your ROS 2 install (source /opt/ros/<distro>/setup.bash)")
        return "rclpy"
    if forced == "dds":
        return "dds"
    try:
        import rclpy  # noqa: F401 - only probing whether a ROS 2 install is sourced
    except ImportError:
        return "dds"
    return "rclpy"


BACKEND = select_backend()

"""distill_ros: distil many robot policies into one ONNX student and run it on ROS 2."""

__version__ = "0.1.0"

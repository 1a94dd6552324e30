"""Middleware layer: one rclpy-shaped API over real rclpy or Cyclone DDS.

Node code imports only from here::

    from distill_ros import ros

    ros.init()
    node = ros.Node("talker", namespace="/robot")
    JointState = ros.get_interface("sensor_msgs/msg/JointState")
    pub = node.create_publisher(JointState, "joint_states", ros.SENSOR_DATA)
    ros.spin(node)

The backend is ``rclpy`` whenever it imports (a sourced ROS 2 install), else
``dds``: Eclipse Cyclone DDS speaking ROS 2's wire conventions, so real ROS 2
nodes on the network see our topics and call our services.
``DISTILL_ROS_BACKEND=dds|rclpy`` forces the choice. Nothing outside this
package imports rclpy or cyclonedds.

Both backends behave the same where rclpy and our DDS backend could differ (checked by
``test/ros/test_parity.py`` on each): byte fields are one-byte ``bytes``;
``Parameter.to_value_msg``/``from_value_msg`` convert parameter values; a client's
``call`` works whether or not its node is spun; ``declare_parameter(name, value,
parameter_descriptor(...))`` refuses read-only and out-of-range sets with rclpy's
reasons; Ctrl-C ends ``spin`` once and leaves the context valid for cleanup;
``serialize_message``/``deserialize_message`` give and take the CDR bytes that
``Publisher.publish`` also accepts (sent as they are, see :mod:`distill_ros.ros.cdr`).
"""

from typing import Any, Optional, Tuple

from distill_ros.ros.backend import BACKEND
from distill_ros.ros.qos import (DEFAULT, LATCHED, PARAMETER_EVENTS, PARAMETERS, QoSProfile,
                                 ROSOUT, SENSOR_DATA, SERVICES_DEFAULT)

if BACKEND == "rclpy":
    from distill_ros.ros._rclpy.api import (deserialize_message, Executor,
                                            get_global_executor, get_interface, init, Node, ok,
                                            Parameter, serialize_message, shutdown, spin,
                                            spin_in_background, spin_once, SpinThread)
else:
    from distill_ros.ros._dds.api import (deserialize_message, Executor,
                                          get_global_executor, get_interface, init, Node, ok,
                                          Parameter, serialize_message, shutdown, spin,
                                          spin_in_background, spin_once, SpinThread)
from distill_ros.ros.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


def set_parameters_result(successful: bool, reason: str = "") -> Any:
    """Return an ``rcl_interfaces/msg/SetParametersResult`` for on-set callbacks."""
    return get_interface("rcl_interfaces/msg/SetParametersResult")(
        successful=successful, reason=reason)


def parameter_descriptor(description: str = "", *, read_only: bool = False,
                         float_range: Optional[Tuple[float, float]] = None,
                         int_range: Optional[Tuple[int, int]] = None, step: float = 0,
                         additional_constraints: str = "") -> Any:
    """Return an ``rcl_interfaces/msg/ParameterDescriptor`` for ``declare_parameter``.

    ``ros2 param describe`` shows it; a set of a read-only parameter, or of a value
    outside ``float_range``/``int_range`` (inclusive; ``step`` 0: any value), is refused
    with rclpy's reason on both backends.
    """
    if float_range is not None and int_range is not None:
        raise ValueError("give float_range or int_range, not both")
    msg = get_interface("rcl_interfaces/msg/ParameterDescriptor")(
        description=description, read_only=read_only,
        additional_constraints=additional_constraints)
    if float_range is not None:
        msg.floating_point_range = [get_interface("rcl_interfaces/msg/FloatingPointRange")(
            from_value=float(float_range[0]), to_value=float(float_range[1]),
            step=float(step))]
    if int_range is not None:
        msg.integer_range = [get_interface("rcl_interfaces/msg/IntegerRange")(
            from_value=int(int_range[0]), to_value=int(int_range[1]), step=int(step))]
    return msg


def backend_name() -> str:
    """Return ``"rclpy"`` or ``"dds"``."""
    return BACKEND


__all__ = [
    "BACKEND", "backend_name", "init", "shutdown", "ok", "Node", "LifecycleNode",
    "LifecycleState", "TransitionCallbackReturn", "Parameter", "get_interface",
    "set_parameters_result", "parameter_descriptor", "spin", "spin_once", "spin_in_background",
    "SpinThread", "Executor", "get_global_executor", "QoSProfile", "SENSOR_DATA", "DEFAULT",
    "PARAMETERS", "SERVICES_DEFAULT", "PARAMETER_EVENTS", "ROSOUT", "LATCHED",
    "serialize_message", "deserialize_message",
]

"""What the inference node sends to ros2_control, and its diagnostics message.

Two outputs, picked by the ``output_type`` parameter:

* ``float64_multi_array``: ``std_msgs/Float64MultiArray`` for a forward command
  controller's ``~/commands`` (RELIABLE). Elements are in ``command_names`` order and
  each carries its name in ``layout.dim[i].label`` (unless ``labelled`` is False). The
  layout is serialised once: each command is those bytes plus its values
  (:class:`~distill_ros.ros.cdr.Float64Tail`), the same bytes the message would give.
* ``joint_trajectory``: ``trajectory_msgs/JointTrajectory`` with one point reached
  one control period from now (``positions`` or ``velocities``, per ``trajectory_field``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np

from distill_ros import ros
from distill_ros.ros.cdr import Float64Tail

log = logging.getLogger(__name__)

OUTPUT_TYPES = ("float64_multi_array", "joint_trajectory")
TRAJECTORY_FIELDS = ("positions", "velocities")


def labelled_array(names: Sequence[str], values: Sequence[float]) -> Any:
    """A ``std_msgs/Float64MultiArray`` whose ``layout.dim[i].label`` names ``data[i]``."""
    array_cls = ros.get_interface("std_msgs/msg/Float64MultiArray")
    dim_cls = ros.get_interface("std_msgs/msg/MultiArrayDimension")
    msg = array_cls(data=[float(v) for v in values])
    msg.layout.dim = [dim_cls(label=name, size=1, stride=1) for name in names]
    return msg


def array_labels(msg: Any) -> list[str]:
    """The element names of a labelled ``Float64MultiArray`` (see :func:`labelled_array`)."""
    return [d.label for d in msg.layout.dim]


class CommandOutput:
    """Publishes commands in the controller's element order (mapped by name).

    Args:
        node: the node that owns the publisher.
        output_type: one of :data:`OUTPUT_TYPES`.
        topic: the controller's command topic.
        policy_names: the policy's action element names, in its order.
        command_names: element names in the controller's order (default: the policy's).
        joints: joint names for ``JointTrajectory`` (default: ``command_names``).
        field: ``positions`` or ``velocities`` of the trajectory point.
        period_s: control period (the trajectory point's ``time_from_start``).
        labelled: name each Float64MultiArray element in ``layout.dim`` (False: data only,
            as forward command controllers read it; fewer bytes per command).
    """

    def __init__(self, node: Any, output_type: str, topic: str, policy_names: Sequence[str],
                 command_names: Sequence[str], joints: Sequence[str], field: str,
                 period_s: float, labelled: bool = True) -> None:
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {list(OUTPUT_TYPES)}, "
                             f"got {output_type!r}")
        if field not in TRAJECTORY_FIELDS:
            raise ValueError(f"trajectory_field must be one of {list(TRAJECTORY_FIELDS)}, "
                             f"got {field!r}")
        self.names = list(command_names) or list(policy_names)
        unknown = [n for n in self.names if n not in policy_names]
        if unknown:
            raise ValueError(f"command_names {unknown} are not actions of the model; its "
                             f"actions are {list(policy_names)}")
        self.order = np.array([list(policy_names).index(n) for n in self.names])
        same_order = self.order.tolist() == list(range(len(policy_names)))
        self._pick = None if same_order else self.order  # None: send the command as it is
        self.joints = list(joints) or self.names
        if len(self.joints) != len(self.names):
            raise ValueError(f"trajectory_joints has {len(self.joints)} names for "
                             f"{len(self.names)} command elements {self.names}")
        self.output_type, self.field, self.period_s = output_type, field, period_s
        self._node = node
        self._wire: Optional[Float64Tail] = None
        if output_type == "float64_multi_array":  # one message, reused: only data changes
            self._msg = labelled_array(self.names if labelled else [], [0.0] * len(self.names))
            try:
                self._wire = Float64Tail(self._msg)
            except ValueError as err:  # not little-endian float64 at the end: the message
                log.info("commands are serialised per message: %s", err)
        else:
            self._msg = ros.get_interface("trajectory_msgs/msg/JointTrajectory")(
                joint_names=self.joints)
            self._msg.points = [ros.get_interface("trajectory_msgs/msg/JointTrajectoryPoint")()]
        self.publisher = node.create_publisher(type(self._msg), topic, ros.DEFAULT)

    def publish(self, command: np.ndarray) -> None:
        """Send ``command`` (policy order) to the controller (callers serialise calls)."""
        if self._wire is not None:
            pick = self._pick
            values = command if pick is None else command[pick]
            self.publisher.publish(self._wire.serialize(values))
            return
        values = command[self.order].tolist()
        msg = self._msg
        if self.output_type == "float64_multi_array":
            msg.data = values
        else:
            msg.header.stamp = self._node.get_clock().now().to_msg()
            point = msg.points[0]
            setattr(point, self.field, values)
            point.time_from_start.sec = int(self.period_s)
            point.time_from_start.nanosec = int((self.period_s % 1.0) * 1e9)
        self.publisher.publish(msg)


def diagnostic_array(node: Any, name: str, level: str, message: str, hardware_id: str,
                     values: dict[str, Any]) -> Any:
    """A ``diagnostic_msgs/DiagnosticArray`` with one status; ``level`` is OK/WARN/ERROR."""
    status_cls = ros.get_interface("diagnostic_msgs/msg/DiagnosticStatus")
    key_value = ros.get_interface("diagnostic_msgs/msg/KeyValue")
    array_cls = ros.get_interface("diagnostic_msgs/msg/DiagnosticArray")
    status = status_cls(level=getattr(status_cls, level), name=name, message=message,
                        hardware_id=hardware_id,
                        values=[key_value(key=k, value=_fmt(v)) for k, v in values.items()])
    msg = array_cls(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

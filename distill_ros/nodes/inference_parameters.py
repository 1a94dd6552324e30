"""The parameters of policy_inference: defaults, descriptions, ranges, and when each applies.

Each parameter applies at one of three moments, as ROS users expect of a managed node:

* ``LIVE``: at once, also while active (limits, rates, watchdog, hold values, the model);
* ``CONFIGURE``: read at configure; a change while configured is refused with the reason;
* ``START``: read-only after the node started (topics, output type): set them in the
  params file or with ``--ros-args -p``, as ROS 2 read-only parameters.

The descriptions and ranges travel in ``rcl_interfaces/ParameterDescriptor``, so
``ros2 param describe /policy_inference rate_hz`` shows them.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Optional, Tuple

from distill_ros import ros

LIVE, CONFIGURE, START = "live", "configure", "start"
TRIGGERS = ("timer", "input")


class Param(NamedTuple):
    """One parameter: default, what it means, when it applies, and an optional range."""

    default: Any
    description: str
    when: str = LIVE
    range: Optional[Tuple[float, float]] = None


PARAMETERS = {
    "model_path": Param("", "exported policy.onnx; a change while configured hot-swaps it"),
    "autostart": Param(False, "configure + activate at start (as a launch file would)", START),
    "rate_hz": Param(0.0, "control rate in Hz; 0: the model's control_rate_hz; with "
                     "trigger=input, the rate the min period derives from", range=(0.0, 1e4)),
    "trigger": Param("timer", "timer: compute at rate_hz; input: compute when trigger_topic "
                     "delivers, at most once per min_period_s", CONFIGURE),
    "trigger_topic": Param("", "trigger=input: the input topic that starts a compute "
                           "('' = joint_states_topic)", CONFIGURE),
    "min_period_s": Param(0.0, "trigger=input: least time between computes in s; 0: half "
                          "the control period", range=(0.0, 10.0)),
    "watchdog_timeout_s": Param(0.5, "s without fresh inputs before holding (diagnostics "
                                "ERROR)", range=(0.001, 3600.0)),
    "use_gpu": Param(True, "CUDA/TensorRT when ONNX Runtime has them", CONFIGURE),
    "swap_wait_s": Param(0.2, "a model_path change blocks at most this long, then loads in "
                         "the background", range=(0.0, 3600.0)),
    "joint_states_topic": Param("joint_states", "sensor_msgs/JointState input", START),
    "joint_obs": Param([""], "'obs_name:joint_name': observation elements read from "
                       "JointState positions", CONFIGURE),
    "array_topics": Param(["~/observations"], "labelled std_msgs/Float64MultiArray inputs",
                          START),
    "array_obs": Param([""], "observation names arriving on array_topics", CONFIGURE),
    "points_groups": Param([""], "'group:topic': a points group from a sensor_msgs/"
                           "PointCloud2 (x, y, z [, label] fields)", START),
    "command_groups": Param([""], "'group:values_topic:mask_topic': a command group from two "
                            "std_msgs/Float64MultiArray (values, 0/1 mask)", START),
    "thread_priority": Param(0, "SCHED_FIFO priority 1-99 of the thread that computes (as "
                             "ros2_control's thread_priority); 0: default scheduling. Needs "
                             "CAP_SYS_NICE or an rtprio limit, else a warning", CONFIGURE,
                             range=(0, 99)),
    "cpu_affinity": Param([-1], "CPUs every thread of the node runs on (as ros2_control's "
                          "cpu_affinity); [-1]: any", CONFIGURE),
    "output_type": Param("float64_multi_array", "float64_multi_array or joint_trajectory",
                         START),
    "label_commands": Param(True, "name each command element in layout.dim[i].label "
                            "(false: data only, as forward command controllers read it, "
                            "fewer bytes per command)", CONFIGURE),
    "output_topic": Param("/forward_command_controller/commands", "command topic", START),
    "command_names": Param([""], "controller element order (default: the model's)",
                           CONFIGURE),
    "trajectory_joints": Param([""], "JointTrajectory joint names (default: command_names)",
                               CONFIGURE),
    "trajectory_field": Param("positions", "positions or velocities of the trajectory point",
                              CONFIGURE),
    "command_low": Param([math.nan], "lowest command, 1 or one per element; NaN: the "
                         "model's limit (tighter only)"),
    "command_high": Param([math.nan], "highest command, 1 or one per element; NaN: the "
                          "model's limit (tighter only)"),
    "max_rate": Param([math.inf], "largest change per second, 1 or one per element"),
    "hold_last": Param([""], "position elements: the hold keeps their last value"),
    "initial_hold": Param([0.0], "hold values before any command was sent"),
    "position_limit_commands": Param([""], "velocity elements limited by joint position..."),
    "position_limit_joints": Param([""], "...of these joints..."),
    "position_limit_low": Param([0.0], "...within [low, high]"),
    "position_limit_high": Param([0.0], "...within [low, high]"),
}


def descriptor(name: str) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` of parameter ``name``."""
    param = PARAMETERS[name]
    when = {LIVE: "applies at once", CONFIGURE: "read at configure",
            START: "read-only after start"}[param.when]
    integer = isinstance(param.default, int) and not isinstance(param.default, bool)
    desc = ros.parameter_descriptor(
        f"{param.description} ({when})", read_only=param.when == START,
        **{"int_range" if integer else "float_range": param.range})
    desc.name = name
    return desc


def declare(node: Any) -> None:
    """Declare every parameter on ``node`` with its descriptor."""
    for name, param in PARAMETERS.items():
        node.declare_parameter(name, param.default, descriptor(name))


def check(changes: Mapping[str, Any]) -> str:
    """Why these new values are invalid whatever the node's state, or ''.

    Types, ranges and read-only flags are the middleware's to check (the descriptors).
    """
    if changes.get("trigger", TRIGGERS[0]) not in TRIGGERS:
        return f"trigger must be one of {list(TRIGGERS)}, got {changes['trigger']!r}"
    return ""


def refused_while_configured(changes: Mapping[str, Any]) -> str:
    """Why a configured node refuses these changes (they apply at configure), or ''."""
    fixed = [n for n in changes if n in PARAMETERS and PARAMETERS[n].when != LIVE]
    if not fixed:
        return ""
    return (f"{', '.join(fixed)} cannot change while configured (read at "
            f"{'configure' if PARAMETERS[fixed[0]].when == CONFIGURE else 'start'}): "
            "deactivate and clean up the node, set it, then configure again")

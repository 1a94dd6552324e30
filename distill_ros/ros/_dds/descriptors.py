"""Parameter descriptors on the DDS backend: read-only, type and range checks as rclpy does.

The refusal reasons are rclpy's own words (``rclpy/node.py``, Humble), so a
``ros2 param set`` that breaks a descriptor answers the same on both backends.
"""

import dataclasses
import math
from typing import Any

REL_TOL = 1e-6  # rclpy's Node.PARAM_REL_TOL: range edges and steps compare this closely


def stored_descriptor(descriptor: Any, descriptor_cls: type, name: str, type_: int) -> Any:
    """A copy of ``descriptor`` (or a blank one) naming the parameter and its type."""
    if descriptor is None:
        return descriptor_cls(name=name, type=type_)
    if not isinstance(descriptor, descriptor_cls):
        raise TypeError(f"descriptor of parameter {name!r} must be an "
                        f"rcl_interfaces/msg/ParameterDescriptor, got {type(descriptor).__name__}"
                        " (build one with ros.parameter_descriptor(...))")
    return dataclasses.replace(descriptor, name=name, type=type_)


def set_problem(name: str, type_name: str, value: Any, descriptor: Any,
                check_read_only: bool = True) -> str:
    """Why ``value`` (of parameter type ``type_name``) breaks ``descriptor``, or ''."""
    if check_read_only and descriptor.read_only:
        return f"Trying to set a read-only parameter: {name}."
    if type_name == "INTEGER" and descriptor.integer_range:
        return _integer_range_problem(name, value, descriptor.integer_range[0])
    if type_name == "DOUBLE" and descriptor.floating_point_range:
        return _float_range_problem(name, value, descriptor.floating_point_range[0])
    return ""


def _integer_range_problem(name: str, value: int, rng: Any) -> str:
    low, high = min(rng.from_value, rng.to_value), max(rng.from_value, rng.to_value)
    if value in (low, high):
        return ""
    if not low < value < high:
        return f"Parameter {name} out of range. Min: {low}, Max: {high}, value: {value}"
    if rng.step != 0 and (value - low) % rng.step != 0:
        return (f"The parameter value for {name} is not a valid step. Min: {low}, max: {high}, "
                f"value: {value}, step: {rng.step}")
    return ""


def _float_range_problem(name: str, value: float, rng: Any) -> str:
    low, high = min(rng.from_value, rng.to_value), max(rng.from_value, rng.to_value)
    if math.isclose(value, low, rel_tol=REL_TOL) or math.isclose(value, high, rel_tol=REL_TOL):
        return ""
    if not low < value < high:
        return f"Parameter {name} out of range Min: {low}, Max: {high}, value: {value}"
    if rng.step != 0.0:
        steps = round((value - low) / rng.step)
        if not math.isclose(low + steps * rng.step, value, rel_tol=REL_TOL):
            return (f"The parameter value for {name} is not close enough to a valid step. "
                    f"Min: {low}, max: {high}, value: {value}, step: {rng.step}")
    return ""

"""Node parameters on the DDS backend, with the services ``ros2 param`` calls.

Each node serves ``~/get_parameters``, ``~/get_parameter_types``,
``~/set_parameters``, ``~/set_parameters_atomically``, ``~/list_parameters`` and
``~/describe_parameters`` (``rcl_interfaces``), like an rclpy node. A set runs
the on-set callbacks first; the first rejection's ``reason`` goes back to the
caller and the value is left unchanged.
"""

import enum
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

from distill_ros.ros._dds.descriptors import set_problem, stored_descriptor

_LOG = logging.getLogger(__name__)


class ParameterType(enum.IntEnum):
    """``rcl_interfaces/msg/ParameterType`` values."""

    NOT_SET = 0
    BOOL = 1
    INTEGER = 2
    DOUBLE = 3
    STRING = 4
    BYTE_ARRAY = 5
    BOOL_ARRAY = 6
    INTEGER_ARRAY = 7
    DOUBLE_ARRAY = 8
    STRING_ARRAY = 9


# ParameterType -> field of rcl_interfaces/msg/ParameterValue
_VALUE_FIELD = {
    ParameterType.BOOL: "bool_value", ParameterType.INTEGER: "integer_value",
    ParameterType.DOUBLE: "double_value", ParameterType.STRING: "string_value",
    ParameterType.BYTE_ARRAY: "byte_array_value", ParameterType.BOOL_ARRAY: "bool_array_value",
    ParameterType.INTEGER_ARRAY: "integer_array_value",
    ParameterType.DOUBLE_ARRAY: "double_array_value",
    ParameterType.STRING_ARRAY: "string_array_value",
}
_ARRAY_OF = {bool: ParameterType.BOOL_ARRAY, int: ParameterType.INTEGER_ARRAY,
             float: ParameterType.DOUBLE_ARRAY, str: ParameterType.STRING_ARRAY}


def infer_type(value: Any) -> ParameterType:
    """Return the parameter type of a Python value (as rclpy infers it)."""
    if value is None:
        return ParameterType.NOT_SET
    if isinstance(value, bool):
        return ParameterType.BOOL
    if isinstance(value, int):
        return ParameterType.INTEGER
    if isinstance(value, float):
        return ParameterType.DOUBLE
    if isinstance(value, str):
        return ParameterType.STRING
    if isinstance(value, (bytes, bytearray)):
        return ParameterType.BYTE_ARRAY
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, bytes) and len(v) == 1 for v in value):
        return ParameterType.BYTE_ARRAY
    if isinstance(value, (list, tuple)):
        kinds = {bool if isinstance(v, bool) else type(v) for v in value}
        if len(kinds) == 1 and next(iter(kinds)) in _ARRAY_OF:
            return _ARRAY_OF[next(iter(kinds))]
        if kinds <= {int, float} and kinds:
            return ParameterType.DOUBLE_ARRAY
        if not value:
            return ParameterType.STRING_ARRAY
    raise ValueError(f"parameter value must be bool, int, float, str, bytes or a list of one "
                     f"of those, got {value!r}")


def _interface(name: str) -> type:
    from distill_ros.ros._dds.typegen import get_generator  # cyclonedds only when used

    return get_generator().struct(name)


def _override_as_declared(name: str, default: Any, override: Any) -> Any:
    """The override in the default's type (ints for doubles become floats), as rclpy checks."""
    want, got = infer_type(default), infer_type(override)
    if want == ParameterType.NOT_SET or want == got:
        return override
    if want == ParameterType.DOUBLE and got == ParameterType.INTEGER:
        return float(override)
    if want == ParameterType.DOUBLE_ARRAY and got == ParameterType.INTEGER_ARRAY:
        return [float(v) for v in override]
    if isinstance(override, (list, tuple)) and not override and want.name.endswith("_ARRAY"):
        return []
    raise ValueError(f"parameter {name!r}: the override {override!r} is {got.name} but the "
                     f"parameter is declared {want.name} (default {default!r}); give a value "
                     "of that type in the params file or -p")


class Parameter:
    """A named, typed value (same attributes as ``rclpy.parameter.Parameter``)."""

    Type = ParameterType

    def __init__(self, name: str, type_: Optional[ParameterType] = None,
                 value: Any = None) -> None:
        self.name = name
        self.type_ = infer_type(value) if type_ is None else ParameterType(type_)
        if self.type_ == ParameterType.DOUBLE_ARRAY and value is not None:
            value = [float(v) for v in value]
        elif self.type_ == ParameterType.DOUBLE and isinstance(value, int):
            value = float(value)
        elif self.type_ == ParameterType.BYTE_ARRAY and isinstance(value, (bytes, bytearray)):
            value = [bytes([b]) for b in value]  # rclpy's form: a list of one-byte bytes
        self.value = value

    @property
    def type(self) -> ParameterType:
        """Alias of ``type_``."""
        return self.type_

    def to_value_msg(self, value_cls: Optional[type] = None) -> Any:
        """Return an ``rcl_interfaces/msg/ParameterValue`` holding this value."""
        if value_cls is None:
            value_cls = _interface("rcl_interfaces/msg/ParameterValue")
        msg = value_cls(type=int(self.type_))
        if self.type_ != ParameterType.NOT_SET:
            value = self.value
            if isinstance(value, tuple):
                value = list(value)
            setattr(msg, _VALUE_FIELD[self.type_], value)
        return msg

    def get_parameter_value(self) -> Any:
        """Return the ``ParameterValue`` message (rclpy's name for :meth:`to_value_msg`)."""
        return self.to_value_msg()

    def to_parameter_msg(self) -> Any:
        """Return an ``rcl_interfaces/msg/Parameter`` (name and value), as rclpy does."""
        return _interface("rcl_interfaces/msg/Parameter")(name=self.name,
                                                          value=self.to_value_msg())

    @classmethod
    def from_value_msg(cls, name: str, msg: Any) -> "Parameter":
        """Build a parameter from an ``rcl_interfaces/msg/ParameterValue``."""
        type_ = ParameterType(msg.type)
        value = None if type_ == ParameterType.NOT_SET else getattr(msg, _VALUE_FIELD[type_])
        if isinstance(value, tuple):
            value = list(value)
        return cls(name, type_, value)

    @classmethod
    def from_parameter_msg(cls, msg: Any) -> "Parameter":
        """Build a parameter from an ``rcl_interfaces/msg/Parameter``, as rclpy does."""
        return cls.from_value_msg(msg.name, msg.value)

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, {self.type_.name}, {self.value!r})"


OnSetCallback = Callable[[List[Parameter]], Any]


class ParameterStore:
    """Declared parameters of one node and the on-set callbacks that guard them."""

    def __init__(self, result_cls: type, descriptor_cls: type, overrides: Dict[str, Any]) -> None:
        self._result_cls = result_cls
        self._descriptor_cls = descriptor_cls
        self._overrides = dict(overrides)
        self._params: Dict[str, Parameter] = {}
        self._descriptors: Dict[str, Any] = {}
        self._callbacks: List[OnSetCallback] = []
        self._lock = threading.RLock()
        # on_change("new" | "changed", params) after a declare or an accepted set
        self.on_change: Optional[Callable[[str, List[Parameter]], None]] = None

    def declare(self, name: str, value: Any = None, descriptor: Any = None,
                ignore_override: bool = False) -> Parameter:
        """Declare ``name`` with a default; a launch/CLI override wins over the default.

        ``descriptor`` (``rcl_interfaces/msg/ParameterDescriptor``) adds a description,
        read-only and a range; a value outside the range raises ValueError, as rclpy does.
        """
        with self._lock:
            if name in self._params:
                raise ValueError(f"parameter {name!r} is already declared")
            if not ignore_override and name in self._overrides:
                value = _override_as_declared(name, value, self._overrides[name])
            param = Parameter(name, value=value)
            stored = stored_descriptor(descriptor, self._descriptor_cls, name, int(param.type_))
            reason = set_problem(name, param.type_.name, value, stored, check_read_only=False)
            if reason:
                raise ValueError(f"parameter {name!r} cannot start at {value!r}: {reason}; "
                                 "give a value in range in the params file or -p")
            self._params[name] = param
            self._descriptors[name] = stored
        if self.on_change is not None:
            self.on_change("new", [param])
        return param

    def has(self, name: str) -> bool:
        """Return whether ``name`` is declared."""
        return name in self._params

    def get(self, name: str) -> Parameter:
        """Return the declared parameter ``name``."""
        try:
            return self._params[name]
        except KeyError:
            raise ValueError(f"parameter {name!r} is not declared; declared: "
                             f"{sorted(self._params)}") from None

    def describe(self, name: str) -> Any:
        """Return the descriptor of the declared parameter ``name``."""
        self.get(name)  # raises for an undeclared name
        return self._descriptors[name]

    def names(self) -> List[str]:
        """Return the declared names, sorted."""
        return sorted(self._params)

    def add_callback(self, callback: OnSetCallback) -> OnSetCallback:
        """Register an on-set callback: ``callback(params) -> SetParametersResult``."""
        self._callbacks.append(callback)
        return callback

    def remove_callback(self, callback: OnSetCallback) -> None:
        """Unregister an on-set callback."""
        self._callbacks.remove(callback)

    def set_atomically(self, params: Sequence[Parameter]) -> Any:
        """Validate ``params`` together, run the callbacks, then store all or none."""
        with self._lock:
            for param in params:
                reason = self._check(param)
                if reason:
                    return self._result_cls(successful=False, reason=reason)
            for callback in self._callbacks:
                try:
                    result = callback(list(params))
                except Exception as err:  # noqa: BLE001 - a raising validator is a refusal
                    return self._result_cls(successful=False, reason=(
                        f"validating {[p.name for p in params]} raised "
                        f"{type(err).__name__}: {err}"))
                if not result.successful:
                    return self._result_cls(successful=False, reason=result.reason)
            for param in params:
                self._params[param.name] = param
        if self.on_change is not None:
            self.on_change("changed", list(params))
        return self._result_cls(successful=True, reason="")

    def _check(self, param: Parameter) -> str:
        current = self._params.get(param.name)
        if current is None:
            return f"parameter {param.name!r} is not declared"
        if param.type_ != current.type_ and current.type_ != ParameterType.NOT_SET:
            return (f"Wrong parameter type, expected 'Type.{current.type_.name}' "
                    f"got 'Type.{param.type_.name}'")  # rclpy's words
        return set_problem(param.name, param.type_.name, param.value,
                           self._descriptors[param.name])

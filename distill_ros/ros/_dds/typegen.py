"""Generate Cyclone DDS IDL classes from ROS 2 message and service definitions.

Message definitions come from ``rosbags``' typestore for the selected distro;
service definitions are the ``.srv`` texts in ``distill_ros/ros/srv/`` parsed by
the same ``rosbags`` msg parser. Nothing is hand-typed, so the layout on the wire
is the one rosidl would generate: ``@final`` structs without optionals,
serialised as XCDR1 (classic CDR), type names mangled as ``rmw_cyclonedds_cpp``
does (``pkg::msg::dds_::Name_``).
"""

import dataclasses
import os
import threading
from importlib import resources
from typing import Any, Callable, Dict, Tuple

from cyclonedds.idl import IdlMeta, IdlStruct
from cyclonedds.idl import types as t
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.base import Nodetype

from distill_ros.ros.names import dds_type_name, split_interface_name

_DISTRO_STORES = {
    "foxy": Stores.ROS2_FOXY,
    "galactic": Stores.ROS2_GALACTIC,
    "humble": Stores.ROS2_HUMBLE,
    "iron": Stores.ROS2_IRON,
    "jazzy": Stores.ROS2_JAZZY,
    "kilted": Stores.ROS2_KILTED,
    "rolling": Stores.ROS2_KILTED,  # newest definitions rosbags ships
}

# ROS primitive name -> (cyclonedds annotation, zero value). A ``byte`` is a one-byte
# ``bytes`` (b'\x02'), as rclpy gives it; on the wire an octet[1] is one octet.
_BASE = {
    "bool": (bool, False),
    "byte": (t.array[t.uint8, 1], b"\x00"),
    "char": (t.uint8, 0),
    "int8": (t.int8, 0),
    "uint8": (t.uint8, 0),
    "int16": (t.int16, 0),
    "uint16": (t.uint16, 0),
    "int32": (t.int32, 0),
    "uint32": (t.uint32, 0),
    "int64": (t.int64, 0),
    "uint64": (t.uint64, 0),
    "float32": (t.float32, 0.0),
    "float64": (t.float64, 0.0),
    "string": (str, ""),
}
_OCTETS = ("byte", "char", "uint8")

FieldDefs = Tuple[list, list]  # (constants, fields) as rosbags spells them


def ros_distro() -> str:
    """Return the ROS 2 distro whose definitions are used (``humble`` by default).

    ``DISTILL_ROS_DISTRO`` wins over ``ROS_DISTRO`` (which a sourced ROS install sets).
    The choice matters on the wire: ``rmw_dds_common/Gid`` is 24 bytes on Humble and
    16 bytes from Iron on.
    """
    distro = os.environ.get("DISTILL_ROS_DISTRO") or os.environ.get("ROS_DISTRO") or "humble"
    distro = distro.strip().lower()
    if distro not in _DISTRO_STORES:
        raise ValueError(
            f"ROS distro must be one of {sorted(_DISTRO_STORES)}, got {distro!r} "
            "(set DISTILL_ROS_DISTRO)")
    return distro


def load_srv_definitions() -> Dict[str, FieldDefs]:
    """Parse every ``srv/<pkg>__<Name>.srv`` file into rosbags field definitions.

    Returns:
        Mapping ``pkg/srv/Name_Request`` and ``pkg/srv/Name_Response`` to
        ``(constants, fields)``.
    """
    defs: Dict[str, FieldDefs] = {}
    folder = resources.files("distill_ros.ros") / "srv"
    for entry in folder.iterdir():
        if not entry.name.endswith(".srv"):
            continue
        pkg, name = entry.name[:-len(".srv")].split("__", 1)
        request, response = _split_srv(entry.read_text(encoding="utf-8"), entry.name)
        for part, text in (("Request", request), ("Response", response)):
            parsed = get_types_from_msg(text, f"{pkg}/msg/{name}_{part}")
            defs[f"{pkg}/srv/{name}_{part}"] = parsed[f"{pkg}/msg/{name}_{part}"]
    return defs


def _split_srv(text: str, filename: str) -> Tuple[str, str]:
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if len(marks) != 1:
        raise ValueError(f"{filename}: a .srv needs exactly one '---' line, found {len(marks)}")
    return "\n".join(lines[:marks[0]]), "\n".join(lines[marks[0] + 1:])


class TypeGenerator:
    """Builds (and caches) one IdlStruct class per ROS interface type."""

    def __init__(self, distro: str) -> None:
        self.distro = distro
        self._store = get_typestore(_DISTRO_STORES[distro])
        self._fielddefs: Dict[str, FieldDefs] = dict(self._store.fielddefs)
        self._fielddefs.update(load_srv_definitions())
        self._classes: Dict[str, type] = {}
        self._services: Dict[str, type] = {}
        self._lock = threading.RLock()

    def has(self, ros_name: str) -> bool:
        """Return whether a definition of ``pkg/msg/Name`` (or srv part) is known."""
        return ros_name in self._fielddefs

    def user_data(self, ros_name: str) -> str:
        """Return the endpoint USER_DATA for a message type: ``typehash=RIHS01_...;``.

        Iron and later read the type hash from here; Humble ignores the key.
        """
        try:
            return f"typehash={self._store.hash_rihs01(ros_name)};"
        except Exception:  # noqa: BLE001 - types outside the typestore have no hash
            return "typehash=;"

    def struct(self, ros_name: str) -> type:
        """Return the IDL class for ``pkg/msg/Name`` or ``pkg/srv/Name_Request``."""
        with self._lock:
            cls = self._classes.get(ros_name)
            if cls is None:
                cls = self._build(ros_name)
                self._classes[ros_name] = cls
            return cls

    def service(self, ros_name: str) -> type:
        """Return the service class for ``pkg/srv/Name``: ``.Request``, ``.Response``.

        The class also carries ``_wire`` (a :class:`ServiceWire`) used by the backend.
        """
        with self._lock:
            cls = self._services.get(ros_name)
            if cls is None:
                pkg, kind, name = split_interface_name(ros_name)
                if kind != "srv":
                    raise ValueError(f"expected a service type 'pkg/srv/Name', got {ros_name!r}")
                request = self.struct(f"{pkg}/srv/{name}_Request")
                response = self.struct(f"{pkg}/srv/{name}_Response")
                cls = type(name, (), {
                    "Request": request, "Response": response, "__ros_type__": ros_name,
                    "_wire": ServiceWire(pkg, name, request, response),
                    "__module__": "distill_ros.ros.interfaces"})
                self._services[ros_name] = cls
            return cls

    def _build(self, ros_name: str) -> type:
        if ros_name not in self._fielddefs:
            raise ValueError(
                f"unknown interface type {ros_name!r} for ROS 2 {self.distro}: rosbags has no "
                "definition; add a .srv file to distill_ros/ros/srv/ for services")
        constants, fields = self._fielddefs[ros_name]
        if not fields:  # rosidl gives empty messages one placeholder member
            fields = [("structure_needs_at_least_one_member", (Nodetype.BASE, ("uint8", 0)))]
        annotations: Dict[str, Any] = {}
        defaults: Dict[str, Callable[[], Any]] = {}
        for fname, desc in fields:
            annotations[fname], defaults[fname] = self._field(desc)
        for fname, value in MSG_DEFAULTS.get(ros_name, {}).items():
            defaults[fname] = lambda value=value: value
        pkg, kind, name = split_interface_name(ros_name)
        if kind == "srv":  # body of a request/response: the wire type wraps it with a header
            typename = f"{pkg}::srv::{name}"
        else:
            typename = dds_type_name(ros_name)
        cls = make_struct(name, typename, annotations, defaults)
        for cname, ctype, value in constants:
            setattr(cls, cname, bytes([value]) if _is_byte(ctype) else value)
        cls.__ros_type__ = ros_name
        cls.__wire_fields__ = _field_kinds(fields)
        return cls

    def _field(self, desc: Tuple[Any, Any]) -> Tuple[Any, Callable[[], Any]]:
        """Map one rosbags field description to (annotation, default factory)."""
        node, arg = desc
        if node == Nodetype.BASE:
            name, bound = arg
            if name == "string" and bound:
                return t.bounded_str[bound], str
            if name not in _BASE:
                raise ValueError(f"ROS type {name!r} is not supported by the DDS backend")
            annotation, zero = _BASE[name]
            return annotation, lambda: zero
        if node == Nodetype.NAME:
            cls = self.struct(arg)
            return cls, cls
        sub, size = arg
        sub_ann, sub_default = self._field(sub)
        octets = sub[0] == Nodetype.BASE and sub[1][0] in _OCTETS
        if node == Nodetype.ARRAY:
            if octets:  # fixed octet arrays travel as raw bytes
                return t.array[t.uint8, size], lambda: bytes(size)
            return t.array[sub_ann, size], lambda: [sub_default() for _ in range(size)]
        seq = t.sequence[sub_ann, size] if size else t.sequence[sub_ann]
        return seq, list


#: Default values the standard .msg files declare (rosbags keeps no defaults, only types).
#: Among the packages this backend serves, geometry_msgs/Quaternion is the only one whose
#: default is not zero: ``float64 w 1`` makes an identity rotation, as in rclpy.
MSG_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "geometry_msgs/msg/Quaternion": {"w": 1.0},
}


def _is_byte(ctype: Any) -> bool:
    """Whether a rosbags constant type is ``byte`` (its value becomes one-byte ``bytes``)."""
    name = ctype[1][0] if isinstance(ctype, tuple) else ctype
    return name == "byte"


def _field_kinds(fields: list) -> Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]:
    """Split field names into (primitive arrays, nested structs, arrays of structs)."""
    arrays, structs, struct_arrays = [], [], []
    for fname, (node, arg) in fields:
        if node == Nodetype.NAME:
            structs.append(fname)
        elif node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            (struct_arrays if arg[0][0] == Nodetype.NAME else arrays).append(fname)
    return tuple(arrays), tuple(structs), tuple(struct_arrays)


def prepare(msg: Any) -> Any:
    """Return ``msg`` ready to serialise: numpy arrays (and tuples) become lists.

    Users may fill array fields with numpy arrays, as with rclpy; Cyclone's
    serialiser wants sequences with plain truthiness. ``msg`` itself is not
    modified: a shallow copy is made only when something had to change.
    """
    arrays, structs, struct_arrays = type(msg).__wire_fields__
    changes: Dict[str, Any] = {}
    for fname in arrays:
        value = getattr(msg, fname)
        if not isinstance(value, (list, bytes)):
            changes[fname] = value.tolist() if hasattr(value, "tolist") else list(value)
    for fname in structs:
        value = getattr(msg, fname)
        ready = prepare(value)
        if ready is not value:
            changes[fname] = ready
    for fname in struct_arrays:
        values = getattr(msg, fname)
        ready = [prepare(v) for v in values]
        if not isinstance(values, list) or any(r is not v for r, v in zip(ready, values)):
            changes[fname] = ready
    return dataclasses.replace(msg, **changes) if changes else msg


def make_struct(name: str, typename: str, annotations: Dict[str, Any],
                defaults: Dict[str, Callable[[], Any]]) -> type:
    """Create a dataclass IdlStruct whose fields all have defaults (like rclpy messages)."""
    bases = (IdlStruct,)
    namespace = IdlMeta.__prepare__(name, bases, typename=typename)
    for fname, annotation in annotations.items():
        namespace["__annotations__"][fname] = annotation
        namespace[fname] = dataclasses.field(default_factory=defaults[fname])
    cls = IdlMeta(name, bases, namespace)
    cls.__module__ = "distill_ros.ros.interfaces"
    return dataclasses.dataclass(cls)


class ServiceWire:
    """Request and reply wire types of one service: rmw_cyclonedds' header + body."""

    def __init__(self, pkg: str, name: str, request: type, response: type) -> None:
        self.request = _wire_struct(f"{pkg}::srv::dds_::{name}_Request_", request)
        self.response = _wire_struct(f"{pkg}::srv::dds_::{name}_Response_", response)


def _wire_struct(typename: str, body: type) -> type:
    # rmw_cyclonedds prefixes service payloads with (uint64 client guid, int64 sequence);
    # the body starts at offset 16, already 8-aligned, so it is laid out as if standalone.
    cls = make_struct(
        typename.rsplit("::", 1)[1], typename,
        {"guid_": t.uint64, "seq_": t.int64, "body": body},
        {"guid_": int, "seq_": int, "body": body})
    cls.__wire_fields__ = ((), ("body",), ())
    return cls


_GENERATORS: Dict[str, TypeGenerator] = {}
_GENERATORS_LOCK = threading.Lock()


def get_generator(distro: str = "") -> TypeGenerator:
    """Return the shared generator for ``distro`` (default: :func:`ros_distro`)."""
    distro = distro or ros_distro()
    with _GENERATORS_LOCK:
        if distro not in _GENERATORS:
            _GENERATORS[distro] = TypeGenerator(distro)
        return _GENERATORS[distro]

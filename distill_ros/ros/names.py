"""ROS 2 names: expansion of relative/private names and their DDS mangling.

The mangling follows ``rmw_cyclonedds_cpp`` so real ROS 2 nodes see our
endpoints: topic ``/x`` is DDS topic ``rt/x``, service ``/s`` is the pair
``rq/sRequest`` / ``rr/sReply``, and message ``pkg/msg/Name`` is DDS type
``pkg::msg::dds_::Name_``.
"""

import re
from typing import Tuple

_NAME_RE = re.compile(r"^[A-Za-z0-9_~{}/]+$")
_PLAIN_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_interface_name(name: str) -> Tuple[str, str, str]:
    """Split an interface name into (package, kind, type).

    Accepts ``pkg/msg/Name``, ``pkg/srv/Name``, ``pkg.msg.Name`` and the short
    ``pkg/Name`` (taken as a message).
    """
    parts = name.replace(".", "/").split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or parts[1] not in ("msg", "srv", "action") or not all(parts):
        raise ValueError(
            f"interface name must look like 'pkg/msg/Name' or 'pkg/srv/Name', got {name!r}")
    return parts[0], parts[1], parts[2]


def dds_type_name(ros_name: str) -> str:
    """Return the DDS type name rmw_cyclonedds uses: ``pkg::msg::dds_::Name_``."""
    pkg, kind, name = split_interface_name(ros_name)
    return f"{pkg}::{kind}::dds_::{name}_"


def dds_service_type_names(ros_name: str) -> Tuple[str, str]:
    """Return the DDS type names of a service's request and reply topics."""
    pkg, kind, name = split_interface_name(ros_name)
    if kind != "srv":
        raise ValueError(f"expected a service type 'pkg/srv/Name', got {ros_name!r}")
    return f"{pkg}::srv::dds_::{name}_Request_", f"{pkg}::srv::dds_::{name}_Response_"


def normalize_namespace(namespace: str) -> str:
    """Return a namespace that starts with ``/`` and has no trailing ``/``."""
    namespace = "/" + namespace.strip("/") if namespace else "/"
    if namespace != "/" and not _NAME_RE.match(namespace):
        raise ValueError(f"invalid namespace {namespace!r}: use letters, digits, '_' and '/'")
    return namespace


def validate_node_name(name: str) -> str:
    """Return ``name`` if it is a valid ROS 2 node name, else raise ``ValueError``."""
    if not _PLAIN_NAME_RE.match(name):
        raise ValueError(
            f"invalid node name {name!r}: must start with a letter or '_' and contain only "
            "letters, digits and '_'")
    return name


def expand_name(name: str, node_name: str, namespace: str) -> str:
    """Expand a topic or service name to its fully qualified form.

    ``/abs`` stays as is, ``rel`` becomes ``<namespace>/rel`` and ``~/priv``
    becomes ``<namespace>/<node_name>/priv``.
    """
    if not name or not _NAME_RE.match(name) or "//" in name or name.endswith("/"):
        raise ValueError(
            f"invalid topic or service name {name!r}: use letters, digits, '_', '/' and "
            "a leading '~/' for private names")
    namespace = normalize_namespace(namespace)
    prefix = "" if namespace == "/" else namespace
    if name == "~":
        return f"{prefix}/{node_name}"
    if name.startswith("~/"):
        return f"{prefix}/{node_name}/{name[2:]}"
    if name.startswith("/"):
        return name
    return f"{prefix}/{name}"


def dds_topic_name(fq_name: str) -> str:
    """Map a fully qualified topic name to its DDS topic (``/x`` -> ``rt/x``)."""
    return "rt" + _absolute(fq_name)


def dds_service_topic_names(fq_name: str) -> Tuple[str, str]:
    """Map a fully qualified service name to its request and reply DDS topics."""
    name = _absolute(fq_name)
    return f"rq{name}Request", f"rr{name}Reply"


def _absolute(fq_name: str) -> str:
    if not fq_name.startswith("/"):
        raise ValueError(f"expected a fully qualified name starting with '/', got {fq_name!r}")
    return fq_name

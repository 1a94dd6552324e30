"""The part of ``--ros-args`` the DDS backend understands.

Supported: ``-p name:=value`` / ``--param``, ``--params-file file.yaml`` (ROS 2's
``ros__parameters`` layout, ``/**`` wildcard included), ``-r __ns:=/ns``, ``-r
__node:=name`` and topic/service remapping ``-r from:=to`` (``rostopic://`` or
``rosservice://`` before ``from`` limits a rule to one kind), each optionally limited to one
node as ``-r node:from:=to`` (what launch_ros writes for ``remappings=``). As in rcl: the
first matching rule wins; ``__node`` rules match the node's name in code, ``__ns`` and
topic rules its name after ``__node``; both sides of a topic rule are expanded against the
node's namespace (``~`` = the node) and a name is matched once fully qualified; ``__ns``
wins over a namespace given in code.
"""

import dataclasses
import fnmatch
import logging
from typing import Any, Dict, List, Optional, Sequence

import yaml

from distill_ros.ros.names import expand_name

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Remap:
    """One ``-r [node:][rostopic://|rosservice://]source:=target`` rule.

    ``node`` None applies to every node; ``kind`` None to topics and services alike.
    ``source`` ``__node`` / ``__ns`` renames the node / sets its namespace.
    """

    node: Optional[str]
    source: str
    target: str
    kind: Optional[str] = None


_SPECIAL = ("__node", "__ns")


@dataclasses.dataclass
class RosArgs:
    """Parsed ``--ros-args``; ``remaps`` in command-line order (the first match wins)."""

    params: Dict[str, Any] = dataclasses.field(default_factory=dict)
    params_files: List[str] = dataclasses.field(default_factory=list)
    remaps: List[Remap] = dataclasses.field(default_factory=list)

    def _first(self, source: str, node_name: str) -> Optional[str]:
        for rule in self.remaps:
            if rule.source == source and rule.node in (None, node_name):
                return rule.target
        return None

    def name_for(self, node_name: str) -> str:
        """The name node ``node_name`` (as the code calls it) runs under (``__node``)."""
        return self._first("__node", node_name) or node_name

    def namespace_for(self, node_name: str) -> Optional[str]:
        """The namespace ``__ns`` gives the node now called ``node_name``, if any."""
        return self._first("__ns", node_name)

    def remap(self, name: str, node_name: str, namespace: str,
              kind: Optional[str] = None) -> str:
        """Fully qualified ``name`` after the first rule that matches it.

        Args:
            name: topic or service name as the code wrote it.
            node_name: the node's name after ``__node`` (selects node-specific rules and
                expands ``~``).
            namespace: the node's namespace.
            kind: "topic" or "service" (rules written ``rostopic://`` / ``rosservice://``
                apply to that kind only); None matches any rule.
        """
        expanded = expand_name(name, node_name, namespace)
        for rule in self.remaps:
            if (rule.source in _SPECIAL or rule.node not in (None, node_name)
                    or (kind is not None and rule.kind not in (None, kind))):
                continue
            if expand_name(rule.source, node_name, namespace) == expanded:
                return expand_name(rule.target, node_name, namespace)
        return expanded

    def overrides_for(self, node_fqn: str) -> Dict[str, Any]:
        """Return the parameter overrides that apply to node ``/ns/name``."""
        found: Dict[str, Any] = {}
        for path in self.params_files:
            found.update(load_params_file(path, node_fqn))
        found.update(self.params)
        return found


_GLOBAL = RosArgs()


def global_args() -> RosArgs:
    """Return the arguments given to ``init()``."""
    return _GLOBAL


def set_global_args(args: Optional[Sequence[str]]) -> RosArgs:
    """Parse ``args`` (e.g. ``sys.argv``) and make them the process-wide ``--ros-args``."""
    global _GLOBAL
    _GLOBAL = parse(args or [])
    return _GLOBAL


def parse(args: Sequence[str]) -> RosArgs:
    """Parse every ``--ros-args ... [--]`` section of ``args``."""
    result = RosArgs()
    inside = False
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        if arg == "--ros-args":
            inside = True
        elif arg == "--":
            inside = False
        elif inside and arg in ("-p", "--param", "-r", "--remap", "--params-file"):
            if i + 1 >= len(items):
                raise ValueError(f"--ros-args: {arg} needs a value")
            _apply(result, arg, items[i + 1])
            i += 1
        i += 1
    return result


def _apply(result: RosArgs, flag: str, value: str) -> None:
    if flag == "--params-file":
        result.params_files.append(value)
        return
    name, sep, raw = value.partition(":=")
    if not sep:
        raise ValueError(f"--ros-args {flag} expects name:=value, got {value!r}")
    if flag in ("-p", "--param"):
        try:
            result.params[name] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            problem = str(err).splitlines()[0]
            raise ValueError(f"--ros-args {flag} {value!r}: the value is not valid YAML "
                             f"({problem}); quote strings, close lists: name:=[1, 2]") from None
        return
    node, kind = None, None
    for prefix, which in (("rostopic://", "topic"), ("rosservice://", "service")):
        if prefix in name:
            head, _, name = name.partition(prefix)
            if head and not head.endswith(":"):
                raise ValueError(f"--ros-args {flag} {value!r}: expected "
                                 f"[node:]{prefix}from:=to")
            node, kind = head[:-1] or None, which
            break
    else:
        head, colon, name = name.rpartition(":")
        node = head if colon else None
    if not name or not raw or node == "":
        raise ValueError(f"--ros-args {flag} {value!r}: expected [node:]from:=to with both "
                         "names non-empty")
    if name == "__name":
        name = "__node"  # rcl accepts both spellings
    if name not in _SPECIAL:
        try:  # check both names now, so a typo stops the process with the rule named
            expand_name(name, "node", "/")
            expand_name(raw, "node", "/")
        except ValueError as err:
            raise ValueError(f"--ros-args {flag} {value!r}: {err}") from None
    elif kind is not None:
        raise ValueError(f"--ros-args {flag} {value!r}: {name} takes no rostopic:// or "
                         "rosservice:// prefix")
    result.remaps.append(Remap(node, name, raw, kind))


def load_params_file(path: str, node_fqn: str) -> Dict[str, Any]:
    """Read the parameters a ROS 2 params YAML gives node ``node_fqn``, flattened with '.'."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"--params-file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ValueError(f"--params-file {path} is not valid YAML: {err}") from None
    found: Dict[str, Any] = {}
    for key, section in data.items():
        pattern = key if key.startswith("/") else "/" + key
        name_only = node_fqn.rsplit("/", 1)[-1]
        if not (fnmatch.fnmatch(node_fqn, pattern.replace("/**", "*"))
                or key == name_only or key == "/**"):
            continue
        params = (section or {}).get("ros__parameters", {})
        found.update(_flatten(params))
    return found


def _flatten(params: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat

"""The part of ``--ros-args`` the DDS backend understands.

Supported: ``-p name:=value`` / ``--param``, ``--params-file file.yaml`` (ROS 2's
``ros__parameters`` layout, ``/**`` wildcard included), ``-r __ns:=/ns``, ``-r
__node:=name`` and topic/service remapping ``-r from:=to``, each optionally limited to one
node as ``-r node:from:=to`` (what launch_ros writes for ``remappings=``). As in rcl, both
sides of a rule are expanded against the node's namespace (``~`` = the node), a name is
matched once fully qualified, and the first matching rule wins.
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
    """One ``-r [node:]source:=target`` rule; ``node`` None applies to every node."""

    node: Optional[str]
    source: str
    target: str


@dataclasses.dataclass
class RosArgs:
    """Parsed ``--ros-args``."""

    params: Dict[str, Any] = dataclasses.field(default_factory=dict)
    params_files: List[str] = dataclasses.field(default_factory=list)
    namespace: Optional[str] = None
    node_name: Optional[str] = None
    remaps: List[Remap] = dataclasses.field(default_factory=list)
    node_names: Dict[str, str] = dataclasses.field(default_factory=dict)   # node:__node
    namespaces: Dict[str, str] = dataclasses.field(default_factory=dict)   # node:__ns

    def name_for(self, node_name: str) -> str:
        """The name node ``node_name`` (as the code calls it) runs under."""
        return self.node_names.get(node_name) or self.node_name or node_name

    def namespace_for(self, node_name: str) -> Optional[str]:
        """The namespace ``--ros-args`` gives node ``node_name``, if any."""
        return self.namespaces.get(node_name) or self.namespace

    def remap(self, name: str, node_names: Sequence[str], namespace: str) -> str:
        """Fully qualified ``name`` after the first rule that matches it, for this node.

        Args:
            name: topic or service name as the code wrote it.
            node_names: the node's name in code and after ``__node`` (either selects
                node-specific rules); the last one expands ``~``.
            namespace: the node's namespace.
        """
        me = node_names[-1]
        expanded = expand_name(name, me, namespace)
        for rule in self.remaps:
            if rule.node is not None and rule.node not in node_names:
                continue
            if expand_name(rule.source, me, namespace) == expanded:
                return expand_name(rule.target, me, namespace)
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
        result.params[name] = yaml.safe_load(raw)
        return
    node, colon, name = name.rpartition(":")
    node = node if colon else None
    if not name or not raw or node == "":
        raise ValueError(f"--ros-args {flag} {value!r}: expected [node:]from:=to with both "
                         "names non-empty")
    if name == "__ns":
        if node is None:
            result.namespace = raw
        else:
            result.namespaces[node] = raw
    elif name in ("__node", "__name"):
        if node is None:
            result.node_name = raw
        else:
            result.node_names[node] = raw
    else:
        try:  # check both names now, so a typo stops the process with the rule named
            expand_name(name, "node", "/")
            expand_name(raw, "node", "/")
        except ValueError as err:
            raise ValueError(f"--ros-args {flag} {value!r}: {err}") from None
        result.remaps.append(Remap(node, name, raw))


def load_params_file(path: str, node_fqn: str) -> Dict[str, Any]:
    """Read the parameters a ROS 2 params YAML gives node ``node_fqn``, flattened with '.'."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"--params-file {path} does not exist") from None
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

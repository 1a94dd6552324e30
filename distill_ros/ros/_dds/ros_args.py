"""The part of ``--ros-args`` the DDS backend understands.

Supported: ``-p name:=value`` / ``--param``, ``--params-file file.yaml`` (ROS 2's
``ros__parameters`` layout, ``/**`` wildcard included) and ``-r __ns:=/ns`` /
``-r __node:=name``. Topic remapping is not supported and is reported.
"""

import dataclasses
import fnmatch
import logging
from typing import Any, Dict, List, Optional, Sequence

import yaml

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class RosArgs:
    """Parsed ``--ros-args``."""

    params: Dict[str, Any] = dataclasses.field(default_factory=dict)
    params_files: List[str] = dataclasses.field(default_factory=list)
    namespace: Optional[str] = None
    node_name: Optional[str] = None

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
    elif name == "__ns":
        result.namespace = raw
    elif name in ("__node", "__name"):
        result.node_name = raw
    else:
        _LOG.warning("DDS backend ignores remapping %s (only __ns and __node)", value)


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

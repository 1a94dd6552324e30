"""What ``sim_robot`` asks of a family's scene: a ROS-free protocol and ROS-free markers.

A family that offers a scene (``TaskFamily.make_scene(task, seed)``) returns an object with
the methods of `Scene`. ``sim_robot`` only translates: joint states, labelled features,
`Shape` markers, an optional point cloud and a status line become ROS messages, so a
family adds a robot to the ROS graph without importing ROS. See ``tasks.grasp_scene`` for
a complete example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from distill_ros.spec import Spec

#: ``Shape.kind`` values and the ``visualization_msgs/Marker`` type each becomes
SHAPE_KINDS = ("cube", "sphere", "cylinder", "line_strip", "points", "text")


@dataclass(frozen=True)
class Shape:
    """One RViz marker, without ROS: where, how big, what colour (metres, world frame).

    ``points`` are the vertices of a ``line_strip`` or ``points`` shape; ``text`` is the
    label of a ``text`` shape (``scale[2]`` is its height). ``ns`` groups shapes in RViz.
    """

    id: int
    kind: str
    position: Sequence[float] = (0.0, 0.0, 0.0)
    orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0)  # quaternion x, y, z, w
    scale: Sequence[float] = (0.05, 0.05, 0.05)
    color: Sequence[float] = (0.7, 0.7, 0.7, 1.0)        # r, g, b, a in [0, 1]
    points: Sequence[Sequence[float]] = ()
    text: str = ""
    ns: str = "sim_robot"

    def __post_init__(self) -> None:
        """Reject a kind RViz has no marker for, naming the choices."""
        if self.kind not in SHAPE_KINDS:
            raise ValueError(f"Shape kind {self.kind!r} is not one of {SHAPE_KINDS}")


class Scene(Protocol):
    """One simulated robot episode that ``sim_robot`` steps at the control rate.

    Attributes read by ``sim_robot``: ``task`` (str), ``seed`` (int, this episode's),
    ``steps`` (control periods this episode) and ``success`` (bool).
    """

    task: str
    seed: int
    steps: int
    success: bool

    def reset(self) -> int:
        """Start the next episode (next seed) and return its seed."""

    def set_command(self, names: Sequence[str], values: Sequence[float]) -> None:
        """Set command elements by name; raise ValueError (names the fix) on bad input."""

    def step(self) -> None:
        """Advance one control period with the current command."""

    def joint_state(self) -> tuple[Sequence[str], list[float], list[float]]:
        """``(names, positions, velocities)`` for ``sensor_msgs/JointState``."""

    def features(self) -> tuple[list[str], list[float]]:
        """Other observation elements by label, for ``~/features``."""

    def shapes(self) -> list[Shape]:
        """Markers for RViz (``~/markers``), e.g. the object, the robot, references."""

    def point_cloud(self) -> Optional[np.ndarray]:
        """(N, 3) x, y, z or (N, 4) x, y, z, label in the world frame; None: no camera."""

    def status(self) -> tuple[str, dict[str, Any]]:
        """A one-line state for ``/diagnostics`` and its key values."""

    def close(self) -> None:
        """Release the simulator."""


def set_by_name(command: np.ndarray, spec: Spec, names: Sequence[str],
                values: Sequence[float]) -> None:
    """Write `values` into `command` at the elements of `spec` named `names`.

    A ``Scene.set_command`` in one line: unknown names, a length mismatch or a non-finite
    value is a ValueError naming the valid elements, and `command` is left unchanged.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(names) != len(values) or not set(names) <= set(spec.names):
        raise ValueError(f"command names {list(names)} (for {len(values)} values) must be "
                         f"elements of {list(spec.names)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"command contains NaN or Inf: {values.tolist()}")
    for name, value in zip(names, values):
        command[spec.names.index(name)] = value


def success_color(success: bool) -> tuple[float, float, float, float]:
    """Green when the task is achieved, orange while it is not (RGBA)."""
    return (0.1, 0.8, 0.2, 0.9) if success else (0.8, 0.5, 0.1, 0.9)

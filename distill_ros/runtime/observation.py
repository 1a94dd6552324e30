"""Observation assembly by name: joint positions, labelled arrays, clouds, masked commands.

Every observation element has exactly one source, chosen by name, never by index:
a joint of ``sensor_msgs/JointState`` (``"palm_x:ee_x"``: element ``palm_x`` is the
position of joint ``ee_x``) or a labelled ``std_msgs/Float64MultiArray`` whose
``layout.dim[i].label`` names element ``i`` of ``data``. No ROS inside: the node
hands over names, values and a monotonic arrival time.

Whole groups arrive from one message each, as plain message parts; the functions check them
against the policy's `Group` and return the ONNX input arrays, with errors naming the group:

- `points_from_cloud`: ``sensor_msgs/PointCloud2`` parts (fields with name/offset/datatype,
  point_step, data, width, height) -> ``(N, C)`` float32 in the group's channel order
  (e.g. x, y, z and an optional label), with the fixed-N selection of `select_points`
  (`cloud_points`: the finite points before it; a group with its own open3d preprocessing
  is built by `pointcloud.group_from_cloud`).
- `command_from_arrays`: values and a 0/1 mask (two ``Float64MultiArray``) ->
  ``{name: values, name_mask: mask}``; masked values are set to 0.
- `GroupStore`: the latest arrays of such groups with their arrival times.
"""

from __future__ import annotations

import math
import threading
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from distill_ros.spec import Group


def parse_joint_map(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``["palm_x:ee_x", ...]`` (observation name : joint name) into a dict."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        if not pair:
            continue
        obs, sep, joint = pair.partition(":")
        if not sep or not obs or not joint:
            raise ValueError(f"joint_obs entries look like 'obs_name:joint_name', got {pair!r}")
        mapping[obs.strip()] = joint.strip()
    return mapping


class ObservationAssembler:
    """Latest value and arrival time of every named input; assembles vectors by name.

    Args:
        joint_map: observation name -> joint name (positions from ``JointState``).
        array_names: observation names that arrive on labelled arrays.
    """

    def __init__(self, joint_map: dict[str, str], array_names: Sequence[str]) -> None:
        self.joint_map = dict(joint_map)
        names = list(self.joint_map) + [n for n in array_names if n not in self.joint_map]
        self.names = tuple(names)
        self._slot = {name: i for i, name in enumerate(self.names)}
        self._joint_slots: dict[str, list[int]] = {}
        for obs, joint in self.joint_map.items():
            self._joint_slots.setdefault(joint, []).append(self._slot[obs])
        self._array_slots = {n: self._slot[n] for n in array_names if n not in self.joint_map}
        self._values = np.zeros(len(self.names), np.float32)  # as the policy reads them
        self._times = [-math.inf] * len(self.names)  # monotonic s; -inf: never received
        self._joint_positions: dict[str, float] = {}
        self._positions_view = MappingProxyType(self._joint_positions)
        self._lock = threading.Lock()

    def missing(self, obs_names: Sequence[str]) -> list[str]:
        """Observation elements that no source provides."""
        return [n for n in obs_names if n not in self._slot]

    def layout(self, obs_names: Sequence[str]) -> np.ndarray:
        """Index array turning the stored values into a policy's observation order."""
        missing = self.missing(obs_names)
        if missing:
            raise ValueError(f"observation elements without a source: {missing}; map them "
                             "to a joint (joint_obs: ['name:joint']) or list them in array_obs")
        return np.array([self._slot[n] for n in obs_names], dtype=np.int64)

    def update_joints(self, names: Sequence[str], positions: Sequence[float],
                      stamp: float) -> None:
        """Store the positions of the mapped joints found in one ``JointState``."""
        with self._lock:
            for name, q in zip(names, positions):
                self._joint_positions[name] = float(q)
                for slot in self._joint_slots.get(name, ()):
                    self._values[slot] = q
                    self._times[slot] = stamp

    def update_array(self, labels: Sequence[str], data: Sequence[float], stamp: float) -> None:
        """Store the elements of one labelled array whose labels are observation names."""
        with self._lock:
            for label, value in zip(labels, data):
                slot = self._array_slots.get(label)
                if slot is not None:
                    self._values[slot] = value
                    self._times[slot] = stamp

    def assemble(self, index: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Return ``(obs, oldest, newest)``: the vector and its oldest/newest arrival times.

        ``oldest`` is ``-inf`` while some element was never received.
        """
        return self.reader(index)()

    def reader(self, index: np.ndarray) -> Callable[[], tuple[np.ndarray, float, float]]:
        """:meth:`assemble` of one ``index`` as a call that does the index's work once.

        For a control loop: an index that takes every stored element (in any order: the
        usual case) reads the times whole instead of element by element.
        """
        index = np.asarray(index, np.int64)
        slots, lock, values, times = index.tolist(), self._lock, self._values, self._times
        if sorted(slots) == list(range(len(times))):
            take = values.copy if slots == sorted(slots) else lambda: values[index]

            def read() -> tuple[np.ndarray, float, float]:
                with lock:  # few elements: Python's min/max are cheaper than numpy's
                    return take(), min(times), max(times)
        else:
            def read() -> tuple[np.ndarray, float, float]:
                with lock:
                    picked = [times[i] for i in slots]
                    return values[index], min(picked), max(picked)
        return read

    def never_received(self, obs_names: Sequence[str]) -> list[str]:
        """Elements of ``obs_names`` that no message has carried yet."""
        with self._lock:
            return [n for n in obs_names if self._times[self._slot[n]] == -math.inf]

    def joint_positions(self) -> Mapping[str, float]:
        """Latest position of every joint seen (for position limits): a live read-only view."""
        return self._positions_view  # no copy per control tick

    def clear(self) -> None:
        """Forget every value (after a reconfigure)."""
        with self._lock:
            self._times[:] = [-math.inf] * len(self._times)  # in place: readers hold it
            self._joint_positions.clear()


#: ``sensor_msgs/PointField`` datatype constants -> numpy types
POINTFIELD_TYPES = {1: np.int8, 2: np.uint8, 3: np.int16, 4: np.uint16, 5: np.int32,
                    6: np.uint32, 7: np.float32, 8: np.float64}


def _field(f: Any, key: str) -> Any:
    return f[key] if isinstance(f, Mapping) else getattr(f, key)


def select_points(points: np.ndarray, n: int, group: str = "points") -> np.ndarray:
    """Exactly `n` rows of `points`, chosen deterministically from the cloud's own order.

    More than `n` points: evenly strided, row ``floor(i * m / n)`` for i < n (the first point
    is always kept). Fewer: the rows repeat in order (row ``i % m``); a max-pooling encoder
    (PointNet) gives the same features for a repeated point, so padding adds nothing
    false. An empty cloud is a ValueError naming `group`.
    """
    m = len(points)
    if m == 0:
        raise ValueError(f"group {group!r}: the point cloud has no valid points; the policy "
                         f"needs {n}")
    index = (np.arange(n) * m) // n if m >= n else np.arange(n) % m
    return points[index]


def points_from_cloud(group: Group, fields: Sequence[Any], point_step: int, data: bytes,
                      width: int, height: int = 1, row_step: Optional[int] = None,
                      is_bigendian: bool = False) -> np.ndarray:
    """``(N, C)`` float32 points of a ``points`` group from the parts of a PointCloud2.

    The cloud's finite points (`cloud_points`), then the fixed-N selection of
    `select_points`. A group with its own preprocessing (`spec.Group.preprocess`) is a
    ValueError: build it with `runtime.pointcloud.group_from_cloud`, as the node does.
    """
    if group.preprocess is not None:
        raise ValueError(f"group {group.name!r} has point-cloud preprocessing: build it with "
                         "distill_ros.runtime.pointcloud.group_from_cloud")
    points = cloud_points(group, fields, point_step, data, width, height, row_step,
                          is_bigendian)
    return select_points(points, group.length, group.name)


def cloud_points(group: Group, fields: Sequence[Any], point_step: int, data: bytes,
                 width: int, height: int = 1, row_step: Optional[int] = None,
                 is_bigendian: bool = False) -> np.ndarray:
    """``(M, C)`` float32 finite points of a PointCloud2, in a ``points`` group's channels.

    Args:
        group: the policy's ``points`` group; its channel names (e.g. ``x, y, z, label``)
            are looked up by name among `fields`.
        fields: the cloud's fields; each has ``name``, ``offset``, ``datatype`` (PointField
            constants) and optionally ``count`` (objects or dicts).
        point_step, data, width, height, row_step, is_bigendian: as in PointCloud2.

    Points with a non-finite channel (NaN marks "no return" in organised clouds) are
    dropped; the cloud's size and order are kept.
    """
    if group.kind != "points":
        raise ValueError(f"group {group.name!r} is a {group.kind} group, not points")
    by_name = {_field(f, "name"): f for f in fields}
    missing = [c for c in group.channels.names if c not in by_name]
    if missing:
        raise ValueError(f"group {group.name!r}: the point cloud lacks field(s) {missing} "
                         f"(it has {sorted(by_name)}); publish them or change the group")
    names, formats, offsets = [], [], []
    for c in group.channels.names:
        f = by_name[c]
        kind = POINTFIELD_TYPES.get(int(_field(f, "datatype")))
        count = int(_field(f, "count")) if _has(f, "count") else 1
        if kind is None or count != 1:
            raise ValueError(f"group {group.name!r}: field {c!r} has datatype "
                             f"{_field(f, 'datatype')} count {count}; a scalar PointField "
                             "type (1..8) with count 1 is needed")
        names.append(c)
        formats.append(np.dtype(kind).newbyteorder(">" if is_bigendian else "<"))
        offsets.append(int(_field(f, "offset")))
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                      "itemsize": int(point_step)})
    row_step = row_step or width * point_step
    if len(data) < row_step * (height - 1) + width * point_step:
        raise ValueError(f"group {group.name!r}: the cloud has {len(data)} bytes, fewer than "
                         f"{height} rows of {width} points of {point_step} bytes need")
    buf = np.frombuffer(bytes(data), np.uint8)
    rows = [np.frombuffer(buf[r * row_step:r * row_step + width * point_step].tobytes(), dtype)
            for r in range(height)]
    table = np.concatenate(rows) if rows else np.zeros(0, dtype)
    points = np.stack([table[c].astype(np.float32) for c in names], axis=1)
    return points[np.all(np.isfinite(points), axis=1)]


def _has(f: Any, key: str) -> bool:
    return key in f if isinstance(f, Mapping) else hasattr(f, key)


def command_from_arrays(group: Group, values: Sequence[float],
                        mask: Sequence[float]) -> dict[str, np.ndarray]:
    """``{name: values, name_mask: mask}`` of a ``command`` group, sizes and mask checked.

    The mask must hold only 0 and 1 (1: commanded). Masked values are replaced by 0 so a
    NaN there cannot reach the graph (0 * NaN is NaN); commanded values must be finite.
    """
    if group.kind != "command":
        raise ValueError(f"group {group.name!r} is a {group.kind} group, not command")
    v = np.asarray(values, np.float64).reshape(-1)
    m = np.asarray(mask, np.float64).reshape(-1)
    size = group.channels.dim
    if v.size != size or m.size != size:
        raise ValueError(f"group {group.name!r}: command has {v.size} values and {m.size} mask "
                         f"entries, the policy needs {size} of each "
                         f"({list(group.channels.names)})")
    if not np.all((m == 0) | (m == 1)):
        raise ValueError(f"group {group.name!r}: the mask must hold only 0 and 1, got "
                         f"{m.tolist()}")
    v = np.where(m == 1, v, 0.0)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"group {group.name!r}: commanded values must be finite, got "
                         f"{v.tolist()}")
    return {group.name: v.astype(np.float32), f"{group.name}_mask": m.astype(np.float32)}


class GroupStore:
    """Latest arrays of each non-vector group and when they arrived (thread-safe).

    Vector elements stay with `ObservationAssembler` (sourced by name); a points or command
    group arrives whole from one message, so it is stored whole here.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        self._times: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, group: str, arrays: Mapping[str, np.ndarray], stamp: float) -> None:
        """Store one group's arrays (as the functions above return them) at `stamp`."""
        with self._lock:
            self._arrays[group] = dict(arrays)
            self._times[group] = stamp

    def assemble(self, groups: Sequence[str]) -> tuple[dict[str, np.ndarray], float, float]:
        """``(arrays by input name, oldest, newest)`` arrival of `groups`.

        ``oldest`` is -inf while one was never received; with no groups it is
        ``({}, inf, -inf)``, neutral under min/max with the vector elements' times.
        """
        with self._lock:
            out: dict[str, np.ndarray] = {}
            for g in groups:
                out.update(self._arrays.get(g, {}))
            times = [self._times.get(g, -np.inf) for g in groups]
            return out, min(times, default=np.inf), max(times, default=-np.inf)

    def never_received(self, groups: Sequence[str]) -> list[str]:
        """Groups no message has carried yet."""
        with self._lock:
            return [g for g in groups if g not in self._times]

    def clear(self) -> None:
        """Forget every group (after a reconfigure)."""
        with self._lock:
            self._arrays.clear()
            self._times.clear()

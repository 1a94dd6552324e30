"""Observation assembly by name: joint positions and labelled arrays -> the policy's vector.

Every observation element has exactly one source, chosen by name, never by index:
a joint of ``sensor_msgs/JointState`` (``"palm_x:ee_x"``: element ``palm_x`` is the
position of joint ``ee_x``) or a labelled ``std_msgs/Float64MultiArray`` whose
``layout.dim[i].label`` names element ``i`` of ``data``. No ROS inside: the node
hands over names, values and a monotonic arrival time.
"""

from __future__ import annotations

import threading
from typing import Iterable, Sequence

import numpy as np


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
        self._values = np.zeros(len(self.names))
        self._times = np.full(len(self.names), -np.inf)  # monotonic s; -inf: never received
        self._joint_positions: dict[str, float] = {}
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
        with self._lock:
            times = self._times[index]
            return self._values[index].astype(np.float32), float(times.min()), float(times.max())

    def never_received(self, obs_names: Sequence[str]) -> list[str]:
        """Elements of ``obs_names`` that no message has carried yet."""
        with self._lock:
            return [n for n in obs_names if self._times[self._slot[n]] == -np.inf]

    def joint_positions(self) -> dict[str, float]:
        """Latest position of every joint seen (for position limits)."""
        with self._lock:
            return dict(self._joint_positions)

    def clear(self) -> None:
        """Forget every value (after a reconfigure)."""
        with self._lock:
            self._times[:] = -np.inf
            self._joint_positions.clear()

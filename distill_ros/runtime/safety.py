"""Safety filters between a policy's action and the robot: no ROS inside.

Order of the filters for one control tick (:meth:`SafetyFilter.apply`):

1. NaN/Inf guard: a non-finite action is never sent; the hold command goes instead.
2. Rate limit: each element changes at most ``max_rate * dt`` from the last command.
3. Clamp to the command limits (the ONNX file's action limits, optionally tighter), after
   the rate limit so that limits tightened while running apply to the next command.
4. Position limits: a velocity command that would push a joint past its position
   limit is zeroed in that direction (last, so no other filter can undo it); a joint
   whose position was never received, or is NaN/Inf, gets no velocity at all.

The *hold* command is what the robot gets when the policy must not drive it (watchdog,
e-stop, deactivation, NaN): velocity elements go to zero, position elements keep their
last commanded value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class PositionLimit:
    """A velocity command element that moves one joint, and that joint's position range.

    Attributes:
        command: action element name, e.g. ``"ee_vx"`` (a velocity).
        joint: joint name in ``sensor_msgs/JointState``, e.g. ``"ee_x"``.
        low: lowest allowed joint position (joint units).
        high: highest allowed joint position (joint units).
    """

    command: str
    joint: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"position limit of joint {self.joint!r} needs low < high, "
                             f"got low={self.low} high={self.high}")


@dataclass
class SafetyConfig:
    """Limits of one command vector, element names in the policy's action order.

    Attributes:
        names: action element names.
        low: lowest command per element.
        high: highest command per element.
        max_rate: largest change per second per element (``inf``: no rate limit).
        hold_last: elements that are positions: the hold command keeps their last value.
        initial_hold: hold values before any command was sent.
        position_limits: joint position limits enforced on velocity elements.
    """

    names: Sequence[str]
    low: Sequence[float]
    high: Sequence[float]
    max_rate: Sequence[float] = ()
    hold_last: Sequence[str] = ()
    initial_hold: Sequence[float] = ()
    position_limits: Sequence[PositionLimit] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = len(self.names)
        for label in ("low", "high"):
            if len(getattr(self, label)) != n:
                raise ValueError(f"{label} has {len(getattr(self, label))} values for "
                                 f"{n} command elements {list(self.names)}")
        for label in ("low", "high", "max_rate"):
            if any(math.isnan(v) for v in np.asarray(getattr(self, label), float).ravel()):
                raise ValueError(f"{label} holds NaN: give a number per element of "
                                 f"{list(self.names)} (inf for no rate limit)")
        for label in ("max_rate", "initial_hold"):
            value = getattr(self, label)
            if len(value) not in (0, 1, n):
                raise ValueError(f"{label} needs 0, 1 or {n} values (one per element of "
                                 f"{list(self.names)}), got {len(value)}")
        unknown = [x for x in self.hold_last if x not in self.names]
        unknown += [p.command for p in self.position_limits if p.command not in self.names]
        if unknown:
            raise ValueError(f"unknown command elements {unknown}; valid: {list(self.names)}")


SETTINGS = ("command_low", "command_high", "max_rate", "hold_last", "initial_hold",
            "position_limit_commands", "position_limit_joints", "position_limit_low",
            "position_limit_high")


def nonempty(values: Sequence[str]) -> list:
    """The non-empty names of a list: ``[""]`` is how a ROS parameter says "none"."""
    return [v for v in values if v]


def config_from_settings(names: Sequence[str], low: Sequence[float], high: Sequence[float],
                         settings: Mapping[str, Any]) -> SafetyConfig:
    """A model's limits tightened by a node's settings (the keys of :data:`SETTINGS`).

    ``command_low``/``command_high`` hold 1 or one value per element (NaN: the model's
    limit); ``position_limit_*`` are parallel lists, one entry per limited command.
    """
    bounds = {"low": np.array(low, float), "high": np.array(high, float)}
    for key, pick, bound in (("command_low", np.fmax, bounds["low"]),
                             ("command_high", np.fmin, bounds["high"])):
        values = list(settings[key])
        if len(values) not in (1, len(names)):
            raise ValueError(f"{key} needs 1 or {len(names)} values (one per element of "
                             f"{list(names)}; NaN keeps the model's limit), got {values}")
        bound[:] = pick(bound, np.broadcast_to(values, bound.shape))  # NaN: the model's
    columns = {k: list(settings[f"position_limit_{k}"])
               for k in ("commands", "joints", "low", "high")}
    columns["commands"], columns["joints"] = (nonempty(columns["commands"]),
                                              nonempty(columns["joints"]))
    lengths = {k: len(v) for k, v in columns.items()}
    if not columns["commands"] and not columns["joints"]:
        columns = {k: [] for k in columns}   # no position limits configured
    elif len(set(lengths.values())) > 1:
        raise ValueError("position_limit_commands/joints/low/high must have one entry per "
                         f"limited command, got lengths {lengths}")
    limits = [PositionLimit(c, j, lo, hi) for c, j, lo, hi in zip(*columns.values())]
    return SafetyConfig(names, bounds["low"], bounds["high"], max_rate=settings["max_rate"],
                        hold_last=nonempty(settings["hold_last"]),
                        initial_hold=settings["initial_hold"], position_limits=limits)


def _broadcast(values: Sequence[float], n: int, default: float) -> np.ndarray:
    if len(values) == 0:
        return np.full(n, default)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()


class SafetyFilter:
    """Turns a raw policy action into a command that is safe to send, or into a hold."""

    def __init__(self, config: SafetyConfig) -> None:
        n = len(config.names)
        self.names = tuple(config.names)
        self.low = np.asarray(config.low, dtype=np.float64)
        self.high = np.asarray(config.high, dtype=np.float64)
        self.max_rate = _broadcast(config.max_rate, n, np.inf)
        self.keep_last = np.array([name in config.hold_last for name in self.names])
        self._initial = np.clip(_broadcast(config.initial_hold, n, 0.0), self.low, self.high)
        self.position_limits = tuple(config.position_limits)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._limits = [(self._index[p.command], p.joint, p.low, p.high)
                        for p in self.position_limits]
        self.rejected = 0  # non-finite actions replaced by a hold
        # a command has a few elements: plain floats are cheaper per tick than numpy calls
        self._last: list | None = None  # last command sent, as floats (see `last`)
        self._bounds = list(zip(self.low.tolist(), self.high.tolist()))
        self._dt, self._steps = 0.0, [0.0] * n  # max_rate * dt, kept while dt is

    @property
    def last(self) -> np.ndarray | None:
        """The last command sent (None before any): the rate limit starts from it."""
        return None if self._last is None else np.array(self._last)

    @last.setter
    def last(self, command: Any) -> None:
        self._last = None if command is None else np.ravel(command).astype(float).tolist()

    def hold(self) -> np.ndarray:
        """The hold command: zero velocities, last positions (initial ones before any)."""
        base = self._initial if self._last is None else self._last
        return np.where(self.keep_last, base, 0.0).clip(self.low, self.high)

    def apply(self, action: np.ndarray, dt: float,
              joint_positions: Mapping[str, float] | None = None) -> tuple[np.ndarray, str]:
        """Filter one action.

        Args:
            action: raw policy output, one value per element of ``names``.
            dt: seconds since the last command (for the rate limit).
            joint_positions: latest joint positions by name (for position limits); a
                limited joint missing here gets zero velocity.

        Returns:
            ``(command, note)``: the command to send and ``""``, or the hold command and
            why (``"non-finite action"``).
        """
        values = (action.tolist() if isinstance(action, np.ndarray) and action.ndim == 1
                  else np.ravel(action).tolist())  # float64, ours to change
        n = len(self._bounds)
        # a sum of finite floats is finite unless it overflows: then check one by one
        if len(values) != n or not (math.isfinite(sum(values))
                                    or all(map(math.isfinite, values))):
            self.rejected += 1
            hold = self.hold()
            self.last = hold
            return hold, "non-finite action" if len(values) == n else (
                f"action has {len(values)} elements, expected {n}")
        last = self._last
        if last is not None and dt > 0:
            if dt != self._dt:
                self._dt, self._steps = dt, (self.max_rate * dt).tolist()
            # x if x > y else y is np.maximum for non-NaN floats, signed zeros included; the
            # rate limit first, then the limits, so limits tightened while running hold from
            # the next command
            for i, (v, prev, step, (low, high)) in enumerate(
                    zip(values, last, self._steps, self._bounds)):
                v = v if v > prev - step else prev - step
                v = v if v < prev + step else prev + step
                v = v if v > low else low
                values[i] = v if v < high else high
        else:
            for i, (v, (low, high)) in enumerate(zip(values, self._bounds)):
                v = v if v > low else low
                values[i] = v if v < high else high
        # last, so a decelerating command never pushes past a joint's range
        for i, joint, low, high in self._limits:
            q = (joint_positions or {}).get(joint)
            if q is None or not math.isfinite(q) or (q >= high and values[i] > 0) or (
                    q <= low and values[i] < 0):
                values[i] = 0.0  # m/s: never past the range; unknown position: no motion
        self._last = values
        return np.array(values), ""

    def mark_held(self, command: np.ndarray) -> None:
        """Record that ``command`` (a hold) was sent, so the rate limit starts from it."""
        self.last = command

"""Clock, time and logger of DDS-backend nodes, shaped like rclpy's."""

import inspect
import logging
import os
import time
from typing import Any, Optional, Tuple

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40, "fatal": 50}


class Time:
    """A point in time in nanoseconds (system clock), like ``rclpy.time.Time``."""

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0, msg_cls: Any = None) -> None:
        self.nanoseconds = int(seconds * 1e9) + int(nanoseconds)
        self._msg_cls = msg_cls

    def seconds_nanoseconds(self) -> Tuple[int, int]:
        """Return ``(sec, nanosec)``."""
        return divmod(self.nanoseconds, 1_000_000_000)

    def to_msg(self) -> Any:
        """Return a ``builtin_interfaces/msg/Time``."""
        sec, nanosec = self.seconds_nanoseconds()
        return self._msg_cls(sec=sec, nanosec=nanosec)

    def __sub__(self, other: "Time") -> float:
        """Difference in seconds (rclpy returns a Duration; seconds keep this simple)."""
        return (self.nanoseconds - other.nanoseconds) / 1e9

    def __repr__(self) -> str:
        return f"Time(nanoseconds={self.nanoseconds})"


class Clock:
    """ROS time: the system clock, or the latest ``/clock`` message with ``use_sim_time``.

    As in rclpy, a node whose ``use_sim_time`` is true reads time 0 until the first
    ``rosgraph_msgs/Clock`` arrives. Control loops never use this clock: they run on the
    monotonic clock.
    """

    def __init__(self, time_msg_cls: Any) -> None:
        self._time_msg_cls = time_msg_cls
        self._sim_ns: Optional[int] = None  # None: system time

    def use_sim_time(self, enabled: bool) -> None:
        """Switch between ``/clock`` time (starting at 0) and system time."""
        self._sim_ns = (self._sim_ns or 0) if enabled else None

    def set_sim_time(self, msg: Any) -> None:
        """Take the time of a ``rosgraph_msgs/Clock`` message (ignored in system mode)."""
        if self._sim_ns is not None:
            self._sim_ns = int(msg.clock.sec) * 1_000_000_000 + int(msg.clock.nanosec)

    def now(self) -> Time:
        """Return the current time."""
        ns = time.time_ns() if self._sim_ns is None else self._sim_ns
        return Time(nanoseconds=ns, msg_cls=self._time_msg_cls)


class NodeLogger:
    """Logs through :mod:`logging` and, like rcl, publishes to ``/rosout``."""

    def __init__(self, name: str, rosout: Optional[Any] = None,
                 log_cls: Any = None, time_msg_cls: Any = None) -> None:
        self.name = name
        self._logger = logging.getLogger(f"distill_ros.node.{name}")
        self._rosout = rosout
        self._log_cls = log_cls
        self._time_msg_cls = time_msg_cls

    def _log(self, level: str, message: str) -> None:
        severity = _LEVELS[level]
        self._logger.log(severity, "[%s] %s", self.name, message)
        if self._rosout is None or not self._logger.isEnabledFor(severity):
            return
        frame = inspect.currentframe()
        caller = frame.f_back.f_back if frame and frame.f_back else None
        sec, nanosec = divmod(time.time_ns(), 1_000_000_000)
        try:
            self._rosout.publish(self._log_cls(
                stamp=self._time_msg_cls(sec=sec, nanosec=nanosec), level=severity,
                name=self.name, msg=str(message),
                file=os.path.basename(caller.f_code.co_filename) if caller else "",
                function=caller.f_code.co_name if caller else "",
                line=caller.f_lineno if caller else 0))
        except Exception:  # noqa: BLE001 - logging must never raise
            self._logger.debug("could not publish to /rosout", exc_info=True)

    def debug(self, message: str) -> None:
        """Log at debug level."""
        self._log("debug", message)

    def info(self, message: str) -> None:
        """Log at info level."""
        self._log("info", message)

    def warn(self, message: str) -> None:
        """Log at warning level (rclpy spelling)."""
        self._log("warn", message)

    warning = warn

    def error(self, message: str) -> None:
        """Log at error level."""
        self._log("error", message)

    def fatal(self, message: str) -> None:
        """Log at fatal level."""
        self._log("fatal", message)

    def get_child(self, suffix: str) -> "NodeLogger":
        """Return a logger named ``<name>.<suffix>`` sharing this one's /rosout."""
        return NodeLogger(f"{self.name}.{suffix}", self._rosout, self._log_cls,
                          self._time_msg_cls)

"""Publishers, subscriptions and timers of the DDS backend."""

import logging
import time
from typing import Any, Callable, Union

from cyclonedds._clayer import ddspy_write
from cyclonedds.core import DDSException

from distill_ros.ros import qos as q
from distill_ros.ros.names import dds_topic_name
from distill_ros.ros._dds.typegen import prepare

_LOG = logging.getLogger(__name__)

#: Samples taken from one reader per executor wake-up.
TAKE_BATCH = 64


def _ros_type(msg_type: type) -> str:
    ros_type = getattr(msg_type, "__ros_type__", None)
    if ros_type is None:
        raise TypeError(
            f"{msg_type!r} is not a ROS interface class: get it from "
            "distill_ros.ros.get_interface('pkg/msg/Name')")
    return ros_type


class Publisher:
    """Writes messages of one type to one topic (``rt/<topic>`` on the wire)."""

    def __init__(self, node: Any, msg_type: type, topic: str, profile: q.QoSProfile) -> None:
        ctx = node.context
        self.msg_type = msg_type
        self.topic_name = topic
        self.qos_profile = profile
        self._writer = ctx.writer(dds_topic_name(topic), msg_type, profile,
                                  ctx.types.user_data(_ros_type(msg_type)))
        self.guid = self._writer.guid.bytes

    def publish(self, msg: Union[Any, bytes]) -> None:
        """Publish ``msg``: an instance of the message class, or its serialised CDR bytes.

        Bytes (as :func:`serialize_message` or rclpy's ``serialize_message`` make them) go
        out as they are, like rclpy's ``publish(bytes)``: no Python serialisation.
        """
        writer = self._writer
        if writer is None:
            raise RuntimeError(f"publisher on {self.topic_name} was destroyed; create a new "
                               "one to publish again")
        if isinstance(msg, bytes):  # as rclpy's publish hands bytes to publish_raw
            if len(msg) < 4 or len(msg) % 4:
                raise ValueError(f"publisher on {self.topic_name}: serialised messages are "
                                 f"whole 4-byte words with the CDR header, got {len(msg)} "
                                 "bytes; make them with ros.serialize_message")
            ret = ddspy_write(writer._ref, msg)
            if ret < 0:
                raise DDSException(ret, f"writing serialised bytes on {self.topic_name}")
            return
        if not isinstance(msg, self.msg_type):
            raise TypeError(
                f"publisher on {self.topic_name} takes {self.msg_type.__ros_type__} or its "
                f"serialised bytes, got {type(msg).__name__}")
        writer.write(prepare(msg))

    def get_subscription_count(self) -> int:
        """Return how many subscriptions (any process) are matched to this publisher."""
        return self._writer.get_publication_matched_status().current_count

    def destroy(self) -> None:
        """Delete the DDS writer."""
        self._writer = None


def serialize_message(msg: Any) -> bytes:
    """The CDR bytes (4-byte header, XCDR1, 4-byte padded) a publisher writes for ``msg``."""
    _ros_type(type(msg))
    data = prepare(msg).serialize(use_version_2=False)  # writers offer XCDR1 only
    return data.ljust((len(data) + 3) & ~3, b"\0")


def deserialize_message(data: bytes, msg_type: type) -> Any:
    """The message of class ``msg_type`` that the CDR bytes ``data`` hold."""
    _ros_type(msg_type)
    return msg_type.deserialize(bytes(data))


class Subscription:
    """Delivers messages of ``rt/<topic>`` to a callback from the executor."""

    def __init__(self, node: Any, msg_type: type, topic: str,
                 callback: Callable[[Any], None], profile: q.QoSProfile) -> None:
        ctx = node.context
        self.msg_type = msg_type
        self.topic_name = topic
        self.qos_profile = profile
        self.callback = callback
        self.reader = ctx.reader(dds_topic_name(topic), msg_type, profile,
                                 ctx.types.user_data(_ros_type(msg_type)))
        self.guid = self.reader.guid.bytes

    def dispatch(self) -> int:
        """Take waiting samples and run the callback on each; return how many ran."""
        count = 0
        for sample in self.reader.take(TAKE_BATCH):
            if not sample.sample_info.valid_data:
                continue
            self.callback(sample)
            count += 1
        return count

    def get_publisher_count(self) -> int:
        """Return how many publishers (any process) are matched to this subscription."""
        return self.reader.get_subscription_matched_status().current_count

    def destroy(self) -> None:
        """Delete the DDS reader."""
        self.reader = None


class Timer:
    """Calls ``callback`` every ``period_s`` seconds from the executor (monotonic clock)."""

    def __init__(self, period_s: float, callback: Callable[[], None]) -> None:
        if period_s <= 0:
            raise ValueError(f"timer period must be positive seconds, got {period_s}")
        self.timer_period_ns = int(period_s * 1e9)
        self.callback = callback
        self._canceled = False
        self._next_ns = time.monotonic_ns() + self.timer_period_ns

    def time_until_next_call(self) -> float:
        """Return seconds until the next call (negative when overdue, inf if canceled)."""
        if self._canceled:
            return float("inf")
        return (self._next_ns - time.monotonic_ns()) / 1e9

    def call_if_due(self) -> bool:
        """Run the callback when due and schedule the next call; return whether it ran."""
        now = time.monotonic_ns()
        if self._canceled or now < self._next_ns:
            return False
        self._next_ns += self.timer_period_ns
        if self._next_ns <= now:  # fell behind by a whole period: skip, do not burst
            self._next_ns = now + self.timer_period_ns
        self.callback()
        return True

    def cancel(self) -> None:
        """Stop calling the callback."""
        self._canceled = True

    def reset(self) -> None:
        """Restart the period from now (and un-cancel)."""
        self._canceled = False
        self._next_ns = time.monotonic_ns() + self.timer_period_ns

    def is_canceled(self) -> bool:
        """Return whether the timer is canceled."""
        return self._canceled

    def destroy(self) -> None:
        """Cancel the timer for good."""
        self.cancel()

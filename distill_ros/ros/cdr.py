"""Serialise once, then only the numbers: CDR bytes of a message whose float64 tail changes.

A control node sends the same ``std_msgs/Float64MultiArray`` every tick with new ``data``;
its layout (the labels) never changes. Serialising the whole message through the
middleware costs tens of microseconds a tick (cyclonedds-python walks every field in
Python; rclpy first converts the message to C). :class:`Float64Tail` serialises the message
once, with the middleware's own serialiser (:func:`~distill_ros.ros.serialize_message`),
and checks that its last bytes are exactly the ``data`` values as little-endian float64:
then everything before them (the CDR header, the layout, the sequence length, the
alignment padding) is the same for any values of that length. From then on a message's
bytes are that prefix followed by the new values, written by numpy. ``Publisher.publish``
sends such bytes as they are on both backends (rclpy's ``publish(bytes)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distill_ros.ros import serialize_message


class Float64Tail:
    """The CDR bytes of ``msg`` for any values of its trailing float64 sequence ``field``.

    Args:
        msg: a message whose last serialised member is the float64 sequence ``field``
            (``std_msgs/Float64MultiArray``: ``data``), already holding as many values as
            every later message will; it is left as it was.
        field: the sequence's name.

    Raises:
        ValueError: the serialised message does not end with that sequence's values as
            little-endian float64 (another member follows it, or a big-endian host); then
            publish the message itself.
    """

    def __init__(self, msg: Any, field: str = "data") -> None:
        original = getattr(msg, field)
        n = len(original)
        prefixes = []
        try:
            for scale in (1.0, -3.0):  # two different probes: the prefix must not change
                probe = (np.arange(1, n + 1, dtype="<f8") + 0.25) * scale
                setattr(msg, field, probe.tolist())
                data = serialize_message(msg)
                tail = probe.tobytes()
                if not data.endswith(tail):
                    raise ValueError(f"{type(msg).__name__}: its CDR bytes do not end with "
                                     f"{field!r} as little-endian float64")
                prefixes.append(data[:len(data) - len(tail)])
        finally:
            setattr(msg, field, original)
        if prefixes[0] != prefixes[1]:
            raise ValueError(f"{type(msg).__name__}: bytes before {field!r} depend on its values")
        self.size = n
        self._buffer = bytearray(prefixes[0] + bytes(8 * n))
        self._values = np.frombuffer(self._buffer, "<f8", count=n, offset=len(prefixes[0]))

    def serialize(self, values: Any) -> bytes:
        """The message's CDR bytes with ``values`` (``size`` numbers) as the sequence."""
        self._values[:] = values  # into the buffer, after the constant prefix
        return bytes(self._buffer)

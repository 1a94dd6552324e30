"""QoS profiles as ``rmw`` defines them, independent of the backend underneath.

Pass a :class:`QoSProfile` (or a plain ``int`` depth, as rclpy allows) to
``create_publisher`` / ``create_subscription``; each backend converts it.
"""

import dataclasses
from typing import Optional, Union

RELIABLE = "reliable"
BEST_EFFORT = "best_effort"
VOLATILE = "volatile"
TRANSIENT_LOCAL = "transient_local"
KEEP_LAST = "keep_last"
KEEP_ALL = "keep_all"


@dataclasses.dataclass(frozen=True)
class QoSProfile:
    """Quality of service of one endpoint.

    Attributes:
        depth: history depth for ``keep_last``.
        reliability: ``reliable`` or ``best_effort``.
        durability: ``volatile`` or ``transient_local`` (late joiners get the last samples).
        history: ``keep_last`` or ``keep_all``.
        lifespan_s: how long a sample stays valid, seconds; ``None`` for forever.
    """

    depth: int = 10
    reliability: str = RELIABLE
    durability: str = VOLATILE
    history: str = KEEP_LAST
    lifespan_s: Optional[float] = None

    def __post_init__(self) -> None:
        _check("reliability", self.reliability, (RELIABLE, BEST_EFFORT))
        _check("durability", self.durability, (VOLATILE, TRANSIENT_LOCAL))
        _check("history", self.history, (KEEP_LAST, KEEP_ALL))
        if self.history == KEEP_LAST and self.depth < 1:
            raise ValueError(f"depth must be at least 1 for keep_last history, got {self.depth}")


def _check(field: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{field} must be one of {list(choices)}, got {value!r}")


#: rmw_qos_profile_sensor_data: best effort, keep last 5.
SENSOR_DATA = QoSProfile(depth=5, reliability=BEST_EFFORT)
#: rmw_qos_profile_default: reliable, keep last 10.
DEFAULT = QoSProfile(depth=10)
#: rmw_qos_profile_parameters: reliable, keep last 1000.
PARAMETERS = QoSProfile(depth=1000)
#: rmw_qos_profile_services_default: reliable, keep last 10.
SERVICES_DEFAULT = QoSProfile(depth=10)
#: rmw_qos_profile_parameter_events: reliable, keep last 1000.
PARAMETER_EVENTS = QoSProfile(depth=1000)
#: rcl_qos_profile_rosout_default: reliable, transient local, keep last 1000, 10 s lifespan.
ROSOUT = QoSProfile(depth=1000, durability=TRANSIENT_LOCAL, lifespan_s=10.0)
#: a latched topic (e.g. a robot description): reliable, transient local, keep last 1.
LATCHED = QoSProfile(depth=1, durability=TRANSIENT_LOCAL)


def as_profile(qos: Union[QoSProfile, int, None]) -> QoSProfile:
    """Return ``qos`` as a profile; an ``int`` is a depth with default settings (as rclpy)."""
    if qos is None:
        return DEFAULT
    if isinstance(qos, QoSProfile):
        return qos
    if isinstance(qos, int) and not isinstance(qos, bool):
        return QoSProfile(depth=qos)
    raise ValueError(f"qos must be a QoSProfile or an int depth, got {qos!r}")

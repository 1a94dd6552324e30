"""Cyclone DDS configuration: loopback-only unless the user brings their own.

Cyclone DDS reads ``CYCLONEDDS_URI`` when the first participant of a process is
created. When the user has not set it, :func:`ensure_dds_config` installs a
config that keeps every packet on ``lo``: multicast off, one unicast peer
(127.0.0.1) and a participant-index range wide enough that many processes on
the same machine still discover each other (Cyclone's default of 9 silently
leaves the tenth process alone).

A user who wants a real network sets ``CYCLONEDDS_URI`` the usual way, exactly
as for ``rmw_cyclonedds_cpp``.
"""

import logging
import os
import random
from typing import Optional

_LOG = logging.getLogger(__name__)

#: Participant indices probed per peer; must exceed the number of DDS processes.
MAX_AUTO_PARTICIPANT_INDEX = 64

_LOOPBACK_XML = (
    "<CycloneDDS><Domain Id=\"any\">"
    "<General><Interfaces><NetworkInterface name=\"lo\"/></Interfaces>"
    "<AllowMulticast>false</AllowMulticast></General>"
    "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
    "<MaxAutoParticipantIndex>{max_index}</MaxAutoParticipantIndex>"
    "<Peers><Peer address=\"127.0.0.1\"/></Peers></Discovery>"
    "</Domain></CycloneDDS>"
)


def loopback_config(max_auto_participant_index: int = MAX_AUTO_PARTICIPANT_INDEX) -> str:
    """Return a Cyclone DDS XML config that talks to 127.0.0.1 only.

    Args:
        max_auto_participant_index: highest participant index Cyclone assigns and
            probes on the unicast peer; at least 32.

    Returns:
        The XML text, suitable as the value of ``CYCLONEDDS_URI``.
    """
    if max_auto_participant_index < 32:
        raise ValueError(
            "max_auto_participant_index must be at least 32 so later processes are "
            f"discovered, got {max_auto_participant_index}")
    return _LOOPBACK_XML.format(max_index=max_auto_participant_index)


def ensure_dds_config() -> str:
    """Install the loopback config in ``CYCLONEDDS_URI`` unless the user set one.

    Must run before the first ``DomainParticipant`` of the process is created;
    child processes inherit the variable.

    Returns:
        The value of ``CYCLONEDDS_URI`` now in effect.
    """
    current = os.environ.get("CYCLONEDDS_URI", "").strip()
    if current:
        return current
    os.environ["CYCLONEDDS_URI"] = loopback_config()
    _LOG.debug("CYCLONEDDS_URI not set: using loopback-only Cyclone DDS config")
    return os.environ["CYCLONEDDS_URI"]


def domain_id() -> int:
    """Return the DDS domain id: ``ROS_DOMAIN_ID`` when set, else 0 (as ROS 2 does)."""
    raw = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"ROS_DOMAIN_ID must be an integer 0..232, got {raw!r}") from None
    if not 0 <= value <= 232:
        raise ValueError(f"ROS_DOMAIN_ID must be an integer 0..232, got {value}")
    return value


def isolate_for_tests(domain: Optional[int] = None) -> int:
    """Force loopback DDS and a private domain in ``os.environ``, for a test session.

    Call it before the first participant (best: at the top of a ``conftest.py``);
    child processes inherit the settings. The user's ``CYCLONEDDS_URI`` is
    overridden on purpose: tests must never send to any address but 127.0.0.1.

    Args:
        domain: ``ROS_DOMAIN_ID`` to use; a random one in 20..220 when None, so
            concurrent test sessions on one machine do not hear each other.

    Returns:
        The domain id now in ``ROS_DOMAIN_ID``.
    """
    if domain is None:
        domain = random.SystemRandom().randint(20, 220)
    os.environ["CYCLONEDDS_URI"] = loopback_config()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    return domain

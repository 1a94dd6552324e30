"""Opt-in real-time scheduling for a control node: a SCHED_FIFO compute thread, pinned CPUs.

The same two knobs as ros2_control's controller manager (``thread_priority``,
``cpu_affinity``), for the same reason: on a loaded machine a control thread at the default
priority waits behind whatever else is runnable, and a tick is late. With SCHED_FIFO the
compute thread preempts every normal thread as soon as its input arrives; pinning the node's
threads to a core that nothing else uses keeps its caches its own.

Both need privileges: SCHED_FIFO needs ``CAP_SYS_NICE`` or an rtprio limit (for example
``@realtime - rtprio 99`` in ``/etc/security/limits.conf``, the user in group ``realtime``).
Without them the node keeps running at the default priority and says so. Linux only. No ROS
inside.

Threads that the compute thread starts (a model loader, a planner pool) do not inherit its
priority (``SCHED_RESET_ON_FORK``): a background load must never compete at FIFO with the
loop it is meant not to disturb.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Optional, Sequence

log = logging.getLogger(__name__)

#: SCHED_FIFO priorities (Linux)
PRIORITY_RANGE = (1, 99)
NO_PERMISSION = ("needs CAP_SYS_NICE or an rtprio limit (e.g. `@realtime - rtprio 99` in "
                 "/etc/security/limits.conf and the user in group realtime)")


class FifoThread:
    """SCHED_FIFO ``priority`` for the thread that calls :meth:`enter`, until :meth:`leave`.

    Args:
        priority: 1-99; 0 leaves the thread at the default scheduling (then both calls do
            nothing).
    """

    def __init__(self, priority: int) -> None:
        if priority and not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise ValueError(f"thread_priority must be 0 (off) or 1-99, got {priority}")
        self.priority = priority
        self.state = "default scheduling" if not priority else "SCHED_FIFO pending"
        self._thread: Optional[threading.Thread] = None

    def enter(self) -> None:
        """From the compute thread: switch it to SCHED_FIFO (or say why not)."""
        if not self.priority:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(self.priority))
        except PermissionError:
            self.state = (f"default scheduling: SCHED_FIFO {self.priority} refused, "
                          f"{NO_PERMISSION}")
            log.warning("thread_priority %d: %s", self.priority, self.state)
            return
        self._thread = threading.current_thread()
        self.state = f"SCHED_FIFO {self.priority} (thread {self._thread.native_id})"
        log.info("compute thread %d runs at SCHED_FIFO priority %d", self._thread.native_id,
                 self.priority)

    def leave(self) -> None:
        """From any thread: the compute thread goes back to the default scheduling."""
        thread, self._thread = self._thread, None
        self.state = "default scheduling" if not self.priority else "SCHED_FIFO pending"
        if thread is None or not thread.is_alive():  # an ended thread has nothing to undo
            return                                   # (and its id may be another's now)
        try:
            os.sched_setscheduler(thread.native_id, os.SCHED_OTHER, os.sched_param(0))
        except ProcessLookupError:  # it ended meanwhile
            pass


def cpus_wanted(cpus: Sequence[int]) -> list[int]:
    """The CPUs of a ``cpu_affinity`` parameter (``[-1]`` or ``[]``: any CPU, i.e. none)."""
    return sorted({int(c) for c in cpus if int(c) >= 0})


def pin_process(cpus: Sequence[int]) -> Optional[set]:
    """Pin every thread of this process to ``cpus``; return the CPUs they had, or None if off.

    Threads started later inherit the pinning from their creator.

    Raises:
        ValueError: a CPU that this process may not use, naming the ones it may.
    """
    wanted = cpus_wanted(cpus)
    if not wanted:
        return None
    allowed = os.sched_getaffinity(0)
    if not set(wanted) <= allowed:
        raise ValueError(f"cpu_affinity {wanted}: this process may only run on CPUs "
                         f"{sorted(allowed)}; pick among them, or [-1] for any")
    try:
        _set_all_threads(wanted)
    except OSError:  # leave no thread half-pinned
        _set_all_threads(allowed)
        raise
    return allowed


def unpin_process(previous: Optional[set]) -> None:
    """Give every thread back the CPUs :func:`pin_process` returned (None: nothing to do)."""
    if previous:
        _set_all_threads(previous)


def _set_all_threads(cpus) -> None:
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # ended meanwhile
            pass

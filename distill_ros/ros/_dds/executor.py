"""A single-threaded executor for DDS-backend nodes (like rclpy's SingleThreadedExecutor).

It sleeps on a Cyclone DDS WaitSet (one read condition per subscription and
service, plus a guard condition to wake it when nodes change) with a timeout
that ends at the next timer deadline, then runs the ready callbacks.
"""

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from cyclonedds.core import DDSException, GuardCondition, InstanceState, ReadCondition
from cyclonedds.core import SampleState
from cyclonedds.core import ViewState, WaitSet
from cyclonedds.util import duration

from distill_ros.ros._dds.context import get_context

_LOG = logging.getLogger(__name__)
_ANY_NEW = SampleState.NotRead | ViewState.Any | InstanceState.Any
_MAX_WAIT_S = 1.0  # wake up at least this often to notice shutdown


class Executor:
    """Runs the callbacks of the nodes added to it, from the thread that spins it."""

    def __init__(self) -> None:
        ctx = get_context()
        self._nodes: List[Any] = []
        self._lock = threading.Lock()
        self._guard = GuardCondition(ctx.participant)
        self._waitset = WaitSet(ctx.participant)
        self._waitset.attach(self._guard)
        self._conditions: Dict[int, Any] = {}  # id(handler) -> (handler, ReadCondition)
        self._shutdown = False

    def add_node(self, node: Any) -> bool:
        """Add ``node``; return False if it was already there."""
        with self._lock:
            if node in self._nodes:
                return False
            self._nodes.append(node)
            node._executors.append(self)
        self.wake()
        return True

    def remove_node(self, node: Any) -> None:
        """Stop running ``node``'s callbacks."""
        with self._lock:
            if node in self._nodes:
                self._nodes.remove(node)
                node._executors.remove(self)
        self.wake()

    def get_nodes(self) -> List[Any]:
        """Return the nodes of this executor."""
        with self._lock:
            return list(self._nodes)

    def wake(self) -> None:
        """Interrupt a wait so new entities (or shutdown) are noticed."""
        if self._guard is not None:
            try:
                self._guard.set(True)
            except DDSException:  # the participant (and the guard with it) is gone already
                pass

    def _sync_conditions(self, handlers: List[Any]) -> None:
        current = {id(h): h for h in handlers if h.reader is not None}
        for key in list(self._conditions):
            if key not in current:
                _handler, condition = self._conditions.pop(key)
                self._waitset.detach(condition)
        for key, handler in current.items():
            if key not in self._conditions:
                condition = ReadCondition(handler.reader, _ANY_NEW)
                self._waitset.attach(condition)
                self._conditions[key] = (handler, condition)

    def spin_once(self, timeout_sec: Optional[float] = None) -> None:
        """Wait up to ``timeout_sec`` (None: until something happens) and run what is ready."""
        if self._shutdown:
            return
        nodes = self.get_nodes()
        handlers = [h for n in nodes for h in n.handlers]
        timers = [t for n in nodes for t in n.timers]
        self._sync_conditions(handlers)
        wait_s = _MAX_WAIT_S if timeout_sec is None else max(0.0, timeout_sec)
        if timers:
            wait_s = min(wait_s, max(0.0, min(t.time_until_next_call() for t in timers)))
        if wait_s > 0:
            self._waitset.wait(duration(seconds=wait_s))
        self._guard.set(False)
        for handler in handlers:
            if handler.reader is not None:
                self._run(handler.dispatch)
        for timer in timers:
            self._run(timer.call_if_due)

    @staticmethod
    def _run(callback: Any) -> None:
        try:
            callback()
        except Exception:  # a failing callback must not stop the node
            _LOG.exception("callback raised")

    def spin(self, until: Optional[Callable[[], bool]] = None) -> None:
        """Run callbacks until :meth:`shutdown` (or the process context goes away).

        With ``until``, raise KeyboardInterrupt once it returns True (checked after every
        wait, at most `_MAX_WAIT_S` apart): `ros.spin` passes `signals.interrupted`.
        """
        while not self._shutdown and get_context(create=False) is not None:
            if until is not None and until():
                raise KeyboardInterrupt
            try:
                self.spin_once(None)
            except DDSException:
                if get_context(create=False) is None:
                    return  # shutdown() deleted the participant under this spin
                raise

    def spin_until_future_complete(self, future: Any, timeout_sec: Optional[float] = None) -> None:
        """Spin until ``future.done()`` or ``timeout_sec`` passes."""
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while not future.done() and not self._shutdown:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self.spin_once(0.05 if left is None else min(left, 0.05))

    def shutdown(self, timeout_sec: Optional[float] = None) -> bool:
        """Stop spinning (from any thread)."""
        self._shutdown = True
        self.wake()
        return True

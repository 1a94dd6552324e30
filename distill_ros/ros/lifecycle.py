"""A managed (lifecycle) node, written once against the common Node API.

States and transitions follow ROS 2's node lifecycle design (lifecycle_msgs):
unconfigured -> inactive -> active, back down, and finalized. The node serves
``~/change_state``, ``~/get_state``, ``~/get_available_states``,
``~/get_available_transitions`` and ``~/get_transition_graph`` and publishes
``~/transition_event``, so ``ros2 lifecycle set <node> configure`` and
``ros2 lifecycle list <node> -a`` work on both backends. As in
ros2/demos, create resources in ``on_configure`` and free them in ``on_cleanup``.
"""

import enum
import logging
import threading
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from distill_ros.ros.backend import BACKEND

if BACKEND == "rclpy":
    from distill_ros.ros._rclpy.api import get_interface, Node
else:
    from distill_ros.ros._dds.api import get_interface, Node

_LOG = logging.getLogger(__name__)


class TransitionCallbackReturn(enum.IntEnum):
    """What a transition callback returns (values of lifecycle_msgs/Transition)."""

    SUCCESS = 97
    FAILURE = 98
    ERROR = 99


class LifecycleState(NamedTuple):
    """A lifecycle state: ``id`` as lifecycle_msgs/State, and its ``label``."""

    state_id: int
    label: str


UNCONFIGURED = LifecycleState(1, "unconfigured")
INACTIVE = LifecycleState(2, "inactive")
ACTIVE = LifecycleState(3, "active")
FINALIZED = LifecycleState(4, "finalized")
_PRIMARY = (UNCONFIGURED, INACTIVE, ACTIVE, FINALIZED)
_CONFIGURING = LifecycleState(10, "configuring")
_CLEANINGUP = LifecycleState(11, "cleaningup")
_SHUTTINGDOWN = LifecycleState(12, "shuttingdown")
_ACTIVATING = LifecycleState(13, "activating")
_DEACTIVATING = LifecycleState(14, "deactivating")
_ERRORPROCESSING = LifecycleState(15, "errorprocessing")

# (start state id, transition id) -> (label, intermediate state, callback, on success)
_TABLE: Dict[Tuple[int, int], Tuple[str, LifecycleState, str, LifecycleState]] = {
    (1, 1): ("configure", _CONFIGURING, "on_configure", INACTIVE),
    (2, 2): ("cleanup", _CLEANINGUP, "on_cleanup", UNCONFIGURED),
    (2, 3): ("activate", _ACTIVATING, "on_activate", ACTIVE),
    (3, 4): ("deactivate", _DEACTIVATING, "on_deactivate", INACTIVE),
    (1, 5): ("shutdown", _SHUTTINGDOWN, "on_shutdown", FINALIZED),
    (2, 6): ("shutdown", _SHUTTINGDOWN, "on_shutdown", FINALIZED),
    (3, 7): ("shutdown", _SHUTTINGDOWN, "on_shutdown", FINALIZED),
}

# intermediate state -> id of its on-success transition (+1 failure, +2 error), as
# lifecycle_msgs/Transition numbers them (TRANSITION_ON_CONFIGURE_SUCCESS = 10, ...)
_RESULT_IDS = {_CONFIGURING.state_id: 10, _CLEANINGUP.state_id: 20, _ACTIVATING.state_id: 30,
               _DEACTIVATING.state_id: 40, _SHUTTINGDOWN.state_id: 50,
               _ERRORPROCESSING.state_id: 60}


def transition_graph() -> List[Tuple[int, str, LifecycleState, LifecycleState]]:
    """Every transition of the state machine: ``(id, label, start, goal)``, as rcl lists them."""
    graph = []
    ends: Dict[int, Tuple[LifecycleState, LifecycleState]] = {}  # middle -> (success, failure)
    for (start_id, tid), (label, middle, _cb, goal) in _TABLE.items():
        start = next(s for s in _PRIMARY if s.state_id == start_id)
        graph.append((tid, label, start, middle))
        ends.setdefault(middle.state_id, (goal, start if middle != _SHUTTINGDOWN else goal))
    middles = {s.state_id: s for s in (_CONFIGURING, _CLEANINGUP, _ACTIVATING, _DEACTIVATING,
                                       _SHUTTINGDOWN)}
    for middle_id, (success, failure) in ends.items():
        base = _RESULT_IDS[middle_id]
        graph += [(base, "transition_success", middles[middle_id], success),
                  (base + 1, "transition_failure", middles[middle_id], failure),
                  (base + 2, "transition_error", middles[middle_id], _ERRORPROCESSING)]
    graph += [(60, "transition_success", _ERRORPROCESSING, UNCONFIGURED),
              (61, "transition_failure", _ERRORPROCESSING, FINALIZED),
              (62, "transition_error", _ERRORPROCESSING, FINALIZED)]
    return graph


class LifecycleNode(Node):
    """Node with the ROS 2 lifecycle; override ``on_configure`` and friends.

    Each ``on_*`` callback gets the current :class:`LifecycleState` and returns a
    :class:`TransitionCallbackReturn` (``True``/``False`` also work; ``None``
    counts as success). An exception counts as ``ERROR``: ``on_error`` then
    decides between unconfigured (success) and finalized.
    """

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._state = UNCONFIGURED
        self._transition_lock = threading.Lock()
        self._msg_state = get_interface("lifecycle_msgs/msg/State")
        self._msg_transition = get_interface("lifecycle_msgs/msg/Transition")
        self._msg_description = get_interface("lifecycle_msgs/msg/TransitionDescription")
        self._msg_event = get_interface("lifecycle_msgs/msg/TransitionEvent")
        self._event_pub = self.create_publisher(self._msg_event, "~/transition_event", 10)
        for name, srv in (("change_state", "ChangeState"), ("get_state", "GetState"),
                          ("get_available_states", "GetAvailableStates"),
                          ("get_available_transitions", "GetAvailableTransitions"),
                          ("get_transition_graph", "GetAvailableTransitions")):
            self.create_service(get_interface(f"lifecycle_msgs/srv/{srv}"), f"~/{name}",
                                getattr(self, f"_srv_{name}"))

    # -- callbacks to override -------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Create resources (unconfigured -> inactive)."""
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start doing work (inactive -> active)."""
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop doing work (active -> inactive)."""
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free what ``on_configure`` created (inactive -> unconfigured)."""
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Last words before finalized."""
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover after a callback raised or returned ERROR; SUCCESS -> unconfigured."""
        return TransitionCallbackReturn.SUCCESS

    # -- driving the state machine ---------------------------------------------------------
    @property
    def current_state(self) -> LifecycleState:
        """The current primary state."""
        return self._state

    @property
    def is_active(self) -> bool:
        """Whether the node is in the active state."""
        return self._state == ACTIVE

    def trigger_transition(self, transition: str) -> TransitionCallbackReturn:
        """Run transition ``configure|activate|deactivate|cleanup|shutdown`` from here."""
        key = self._lookup(0, transition)
        if key is None:
            _LOG.warning("%s: transition %r is not possible from state %s",
                         self.get_name(), transition, self._state.label)
            return TransitionCallbackReturn.FAILURE
        return self._run_transition(key)

    def trigger_configure(self) -> TransitionCallbackReturn:
        """Configure the node."""
        return self.trigger_transition("configure")

    def trigger_activate(self) -> TransitionCallbackReturn:
        """Activate the node."""
        return self.trigger_transition("activate")

    def trigger_deactivate(self) -> TransitionCallbackReturn:
        """Deactivate the node."""
        return self.trigger_transition("deactivate")

    def trigger_cleanup(self) -> TransitionCallbackReturn:
        """Clean the node up."""
        return self.trigger_transition("cleanup")

    def trigger_shutdown(self) -> TransitionCallbackReturn:
        """Shut the node down (from any primary state but finalized)."""
        return self.trigger_transition("shutdown")

    def _lookup(self, transition_id: int, label: str) -> Optional[Tuple[int, int]]:
        for (start, tid), (tlabel, _mid, _cb, _goal) in _TABLE.items():
            if start == self._state.state_id and (tid == transition_id or
                                                  (transition_id == 0 and tlabel == label)):
                return start, tid
        return None

    def _run_transition(self, key: Tuple[int, int]) -> TransitionCallbackReturn:
        with self._transition_lock:
            if key[0] != self._state.state_id:
                return TransitionCallbackReturn.FAILURE
            label, middle, callback_name, goal = _TABLE[key]
            start = self._state
            self._publish_event(key[1], label, start, middle)
            result = self._call(callback_name, start)
            if result == TransitionCallbackReturn.SUCCESS:
                end = goal
            elif result == TransitionCallbackReturn.FAILURE:
                end = start
            else:
                recovered = self._call("on_error", _ERRORPROCESSING)
                end = UNCONFIGURED if recovered == TransitionCallbackReturn.SUCCESS else FINALIZED
            self._state = end
            self._publish_event(key[1], label, middle, end)
            _LOG.info("%s: %s %s -> %s (%s)", self.get_name(), label, start.label, end.label,
                      result.name)
            return result

    def _call(self, name: str, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            result = getattr(self, name)(state)
        except Exception:  # a raising callback is an ERROR transition, as in rclcpp
            _LOG.exception("%s: %s raised", self.get_name(), name)
            return TransitionCallbackReturn.ERROR
        if result is None or result is True:
            return TransitionCallbackReturn.SUCCESS
        if result is False:
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn(int(result))

    # -- messages and services -------------------------------------------------------------
    def _state_msg(self, state: LifecycleState) -> Any:
        return self._msg_state(id=state.state_id, label=state.label)

    def _publish_event(self, tid: int, label: str, start: LifecycleState,
                       goal: LifecycleState) -> None:
        event = self._msg_event(
            timestamp=self.get_clock().now().nanoseconds,
            transition=self._msg_transition(id=tid, label=label),
            start_state=self._state_msg(start), goal_state=self._state_msg(goal))
        try:
            self._event_pub.publish(event)
        except Exception as err:  # noqa: BLE001 - a lost event must not undo a transition
            _LOG.warning("%s: transition event %s not published: %s", self.get_name(), label,
                         err)

    def _srv_change_state(self, request: Any, response: Any) -> Any:
        key = self._lookup(request.transition.id, request.transition.label)
        if key is None:
            _LOG.warning("%s: transition id=%d label=%r not possible from %s", self.get_name(),
                         request.transition.id, request.transition.label, self._state.label)
            response.success = False
        else:
            response.success = self._run_transition(key) == TransitionCallbackReturn.SUCCESS
        return response

    def _srv_get_state(self, request: Any, response: Any) -> Any:
        response.current_state = self._state_msg(self._state)
        return response

    def _srv_get_available_states(self, request: Any, response: Any) -> Any:
        states = _PRIMARY + (_CONFIGURING, _CLEANINGUP, _SHUTTINGDOWN, _ACTIVATING,
                             _DEACTIVATING, _ERRORPROCESSING)
        response.available_states = [self._state_msg(s) for s in states]
        return response

    def _srv_get_available_transitions(self, request: Any, response: Any) -> Any:
        response.available_transitions = [
            self._msg_description(
                transition=self._msg_transition(id=tid, label=label),
                start_state=self._state_msg(self._state), goal_state=self._state_msg(middle))
            for (start, tid), (label, middle, _cb, _goal) in _TABLE.items()
            if start == self._state.state_id]
        return response

    def _srv_get_transition_graph(self, request: Any, response: Any) -> Any:
        response.available_transitions = [
            self._msg_description(transition=self._msg_transition(id=tid, label=label),
                                  start_state=self._state_msg(start),
                                  goal_state=self._state_msg(goal))
            for tid, label, start, goal in transition_graph()]
        return response

"""``Node`` of the DDS backend: the rclpy-shaped surface node code is written against."""

import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from distill_ros.ros import qos as q
from distill_ros.ros.names import expand_name, normalize_namespace, validate_node_name
from distill_ros.ros._dds import ros_args
from distill_ros.ros._dds.clock_log import Clock, NodeLogger
from distill_ros.ros._dds.context import get_context
from distill_ros.ros._dds.endpoints import Publisher, Subscription, Timer
from distill_ros.ros._dds.parameter_services import ParameterServices
from distill_ros.ros._dds.parameters import OnSetCallback, Parameter, ParameterStore
from distill_ros.ros._dds.services import Client, Service

_LOG = logging.getLogger(__name__)
QoSArg = Union[q.QoSProfile, int, None]


class Node:
    """A ROS 2 node on Cyclone DDS (same method names and arguments as ``rclpy.node.Node``).

    Args:
        node_name: node name, e.g. ``"inference"``.
        namespace: namespace, e.g. ``"/robot1"``; default from ``--ros-args -r __ns:=``.
        parameter_overrides: values that win over the defaults of ``declare_parameter``
            (as ``--ros-args -p name:=value`` does).
        start_parameter_services: serve ``~/get_parameters`` etc. for ``ros2 param``.
        enable_rosout: publish log lines on ``/rosout``.
    """

    def __init__(self, node_name: str, *, namespace: Optional[str] = None,
                 parameter_overrides: Optional[Dict[str, Any]] = None,
                 start_parameter_services: bool = True, enable_rosout: bool = True) -> None:
        self.context = get_context()
        self._args = remap = ros_args.global_args()
        self._name = validate_node_name(remap.name_for(node_name))
        ns = remap.namespace_for(self._name)  # as in rcl, __ns wins over the code's namespace
        self._namespace = normalize_namespace(ns if ns is not None else namespace or "/")
        self._lock = threading.RLock()
        self._announced = False  # in ros_discovery_info yet?
        self._destroyed = False
        self._executors: List[Any] = []
        self._publishers: List[Publisher] = []
        self._handlers: List[Union[Subscription, Service]] = []
        self._clients: List[Client] = []
        self._timers: List[Timer] = []
        overrides = remap.overrides_for(self.get_fully_qualified_name())
        overrides.update(parameter_overrides or {})
        types = self.context.types
        self._parameters = ParameterStore(
            types.struct("rcl_interfaces/msg/SetParametersResult"),
            types.struct("rcl_interfaces/msg/ParameterDescriptor"), overrides)
        self._clock = Clock(types.struct("builtin_interfaces/msg/Time"))
        # rclpy's node always publishes declares and sets here (rqt_reconfigure listens)
        self._param_events = self.create_publisher(
            types.struct("rcl_interfaces/msg/ParameterEvent"), "/parameter_events",
            q.PARAMETER_EVENTS)
        self._parameters.on_change = self._parameters_changed
        self._clock_sub: Optional[Subscription] = None
        if self.declare_parameter("use_sim_time", False).value:  # rclpy declares it too
            self._set_sim_time(True)
        rosout = None
        if enable_rosout:
            rosout = self.create_publisher(
                types.struct("rcl_interfaces/msg/Log"), "/rosout", q.ROSOUT)
        logger_name = self.get_fully_qualified_name().lstrip("/").replace("/", ".")
        self._logger = NodeLogger(logger_name, rosout, types.struct("rcl_interfaces/msg/Log"),
                                  types.struct("builtin_interfaces/msg/Time"))
        if start_parameter_services:
            ParameterServices(self)
        self.context.graph.add_node(self)
        self._announced = True

    # -- names ---------------------------------------------------------------------------
    def get_name(self) -> str:
        """Return the node name."""
        return self._name

    def get_namespace(self) -> str:
        """Return the node namespace (``/`` for none)."""
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        """Return ``<namespace>/<name>``."""
        return expand_name("~", self._name, self._namespace)

    def resolve_name(self, name: str, only_expand: bool = False,
                     kind: Optional[str] = None) -> str:
        """Expand a relative or ``~/`` private name against this node, then remap it.

        ``kind`` ("topic" or "service") selects rules limited with ``rostopic://`` or
        ``rosservice://``; None applies every rule.
        """
        if only_expand:
            return expand_name(name, self._name, self._namespace)
        return self._args.remap(name, self._name, self._namespace, kind)

    def resolve_topic_name(self, topic: str, *, only_expand: bool = False) -> str:
        """Expand and remap a topic name, as rclpy's ``Node.resolve_topic_name``."""
        return self.resolve_name(topic, only_expand, "topic")

    def resolve_service_name(self, service: str, *, only_expand: bool = False) -> str:
        """Expand and remap a service name, as rclpy's ``Node.resolve_service_name``."""
        return self.resolve_name(service, only_expand, "service")

    def graph_entry(self) -> Tuple[str, str, List[bytes], List[bytes]]:
        """Return (name, namespace, reader GUIDs, writer GUIDs) for ``ros_discovery_info``."""
        with self._lock:
            readers = [h.guid for h in self._handlers] + [c.guid for c in self._clients]
            writers = ([p.guid for p in self._publishers]
                       + [h.writer_guid for h in self._handlers if isinstance(h, Service)]
                       + [c.writer_guid for c in self._clients])
        return self._name, self._namespace, readers, writers

    # -- endpoints -----------------------------------------------------------------------
    def create_publisher(self, msg_type: type, topic: str, qos_profile: QoSArg = None,
                         **_ignored: Any) -> Publisher:
        """Create a publisher of ``msg_type`` on ``topic``."""
        pub = Publisher(self, msg_type, self.resolve_topic_name(topic),
                        q.as_profile(qos_profile))
        return self._added(self._publishers, pub)

    def create_subscription(self, msg_type: type, topic: str, callback: Callable[[Any], None],
                            qos_profile: QoSArg = None, **_ignored: Any) -> Subscription:
        """Create a subscription; ``callback(msg)`` runs in the executor."""
        sub = Subscription(self, msg_type, self.resolve_topic_name(topic), callback,
                           q.as_profile(qos_profile))
        return self._added(self._handlers, sub)

    def create_service(self, srv_type: type, srv_name: str,
                       callback: Callable[[Any, Any], Any], **_ignored: Any) -> Service:
        """Serve ``srv_name``; ``callback(request, response) -> response`` runs in the executor."""
        return self._added(self._handlers,
                           Service(self, srv_type, self.resolve_service_name(srv_name),
                                   callback))

    def create_client(self, srv_type: type, srv_name: str, **_ignored: Any) -> Client:
        """Create a client of ``srv_name`` (``call`` works without spinning this node)."""
        return self._added(self._clients,
                           Client(self, srv_type, self.resolve_service_name(srv_name)))

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None],
                     **_ignored: Any) -> Timer:
        """Call ``callback()`` every ``timer_period_sec`` seconds from the executor."""
        return self._added(self._timers, Timer(timer_period_sec, callback))

    def _added(self, bucket: list, entity: Any) -> Any:
        with self._lock:
            bucket.append(entity)
        if not isinstance(entity, Timer) and self._announced:
            self.context.graph.publish()
        self._wake_executors()
        return entity

    def _destroy_entity(self, bucket: list, entity: Any) -> bool:
        with self._lock:
            if entity not in bucket:
                return False
            bucket.remove(entity)
        entity.destroy()
        self.context.graph.publish()
        self._wake_executors()
        return True

    def destroy_publisher(self, publisher: Publisher) -> bool:
        """Destroy a publisher of this node."""
        return self._destroy_entity(self._publishers, publisher)

    def destroy_subscription(self, subscription: Subscription) -> bool:
        """Destroy a subscription of this node."""
        return self._destroy_entity(self._handlers, subscription)

    def destroy_service(self, service: Service) -> bool:
        """Destroy a service of this node."""
        return self._destroy_entity(self._handlers, service)

    def destroy_client(self, client: Client) -> bool:
        """Destroy a client of this node."""
        return self._destroy_entity(self._clients, client)

    def destroy_timer(self, timer: Timer) -> bool:
        """Destroy a timer of this node."""
        return self._destroy_entity(self._timers, timer)

    # -- executor hooks ------------------------------------------------------------------
    @property
    def handlers(self) -> List[Union[Subscription, Service]]:
        """Subscriptions and services, for the executor."""
        with self._lock:
            return list(self._handlers)

    @property
    def timers(self) -> List[Timer]:
        """Timers, for the executor."""
        with self._lock:
            return list(self._timers)

    def _wake_executors(self) -> None:
        for executor in list(self._executors):
            executor.wake()

    # -- parameters ----------------------------------------------------------------------
    def declare_parameter(self, name: str, value: Any = None, descriptor: Any = None,
                          ignore_override: bool = False) -> Parameter:
        """Declare parameter ``name`` with default ``value``; return it (override applied).

        ``descriptor``: an ``rcl_interfaces/msg/ParameterDescriptor`` (see
        ``ros.parameter_descriptor``); its read-only flag and range guard later sets.
        """
        return self._parameters.declare(name, value, descriptor, ignore_override)

    def declare_parameters(self, namespace: str,
                           parameters: Sequence[Tuple[Any, ...]]) -> List[Parameter]:
        """Declare ``(name, default[, descriptor])`` tuples under ``namespace`` (may be '')."""
        prefix = f"{namespace}." if namespace else ""
        return [self.declare_parameter(prefix + item[0], *item[1:]) for item in parameters]

    def describe_parameter(self, name: str) -> Any:
        """Return the ``ParameterDescriptor`` of the declared parameter ``name``."""
        return self._parameters.describe(name)

    def describe_parameters(self, names: Sequence[str]) -> List[Any]:
        """Return the descriptors of several declared parameters."""
        return [self._parameters.describe(n) for n in names]

    def has_parameter(self, name: str) -> bool:
        """Return whether ``name`` is declared."""
        return self._parameters.has(name)

    def get_parameter(self, name: str) -> Parameter:
        """Return the declared parameter ``name`` (read ``.value``)."""
        return self._parameters.get(name)

    def get_parameters(self, names: Sequence[str]) -> List[Parameter]:
        """Return several declared parameters."""
        return [self._parameters.get(n) for n in names]

    def set_parameters(self, parameters: Sequence[Parameter]) -> List[Any]:
        """Set parameters one by one through the on-set callbacks; return their results."""
        return [self._parameters.set_atomically([p]) for p in parameters]

    def set_parameters_atomically(self, parameters: Sequence[Parameter]) -> Any:
        """Set all parameters or none; return one result."""
        return self._parameters.set_atomically(list(parameters))

    def add_on_set_parameters_callback(self, callback: OnSetCallback) -> OnSetCallback:
        """Register ``callback(params) -> SetParametersResult`` to accept or reject sets."""
        return self._parameters.add_callback(callback)

    def remove_on_set_parameters_callback(self, callback: OnSetCallback) -> None:
        """Unregister an on-set callback."""
        self._parameters.remove_callback(callback)

    def _parameters_changed(self, kind: str, params: List[Parameter]) -> None:
        for param in params:
            if param.name == "use_sim_time" and kind == "changed":
                self._set_sim_time(bool(param.value))
        self._publish_parameter_event(kind, params)

    def _set_sim_time(self, enabled: bool) -> None:
        """Follow ``/clock`` (rosgraph_msgs/Clock, best effort, depth 1, as rclpy) or not."""
        self._clock.use_sim_time(enabled)
        if enabled and self._clock_sub is None:
            self._clock_sub = self.create_subscription(
                self.context.types.struct("rosgraph_msgs/msg/Clock"), "/clock",
                self._clock.set_sim_time,
                q.QoSProfile(depth=1, reliability=q.BEST_EFFORT))
        elif not enabled and self._clock_sub is not None:
            self.destroy_subscription(self._clock_sub)
            self._clock_sub = None

    def _publish_parameter_event(self, kind: str, params: List[Parameter]) -> None:
        """``rcl_interfaces/ParameterEvent`` for declared ("new") or set ("changed") params."""
        if self._destroyed:
            return
        types = self.context.types
        value_cls = types.struct("rcl_interfaces/msg/ParameterValue")
        param_cls = types.struct("rcl_interfaces/msg/Parameter")
        items = [param_cls(name=p.name, value=p.to_value_msg(value_cls)) for p in params]
        event = types.struct("rcl_interfaces/msg/ParameterEvent")(
            stamp=self._clock.now().to_msg(), node=self.get_fully_qualified_name(),
            **{f"{kind}_parameters": items})
        try:
            self._param_events.publish(event)
        except Exception as err:  # noqa: BLE001 - an event must never undo a parameter set
            _LOG.warning("could not publish /parameter_events: %s", err)

    # -- misc ----------------------------------------------------------------------------
    def get_logger(self) -> NodeLogger:
        """Return the node's logger (``info``, ``warn``, ``error``, ...)."""
        return self._logger

    def get_clock(self) -> Clock:
        """Return the node's clock (system time, or ``/clock`` with ``use_sim_time``)."""
        return self._clock

    def get_node_names_and_namespaces(self) -> List[Tuple[str, str]]:
        """Return ``(name, namespace)`` of every node on the network (``ros2 node list``)."""
        return self.context.graph.node_names_and_namespaces()

    def get_node_names(self) -> List[str]:
        """Return the names of every node on the network."""
        return [name for name, _ in self.get_node_names_and_namespaces()]

    def count_publishers(self, topic: str) -> int:
        """Return how many publishers our subscriptions on ``topic`` are matched with."""
        topic = self.resolve_topic_name(topic)
        subs = [h for h in self.handlers if isinstance(h, Subscription) and h.topic_name == topic]
        return max((s.get_publisher_count() for s in subs), default=0)

    def destroy_node(self) -> None:
        """Destroy every entity of this node and leave the ROS graph."""
        if self._destroyed:
            return
        self._destroyed = True
        for executor in list(self._executors):
            executor.remove_node(self)
        with self._lock:
            entities = self._publishers + self._handlers + self._clients + self._timers
            self._publishers, self._handlers, self._clients, self._timers = [], [], [], []
        if get_context(create=False) is not self.context:
            return  # shutdown() already deleted the participant and everything in it
        for entity in entities:
            entity.destroy()
        self.context.graph.remove_node(self)

"""The rclpy backend: thin adapters so node code is the same as on the DDS backend.

Only what differs is wrapped: QoS profiles (ours -> rclpy's), parameter
overrides given as a dict, parameter descriptors refusing a default with a
ValueError, ``Parameter.to_value_msg``, a client whose ``call`` takes a timeout
and works whether or not the node is spun elsewhere, Ctrl-C that leaves the
context valid for cleanup (:mod:`distill_ros.ros.signals`), a clean message for
a malformed ``--ros-args``, and :func:`get_interface` importing the generated class.
"""

import importlib
import re
import threading
from typing import Any, Dict, Optional, Sequence, Union

import rclpy
import rclpy.parameter
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
from rclpy.node import Node as _RclpyNode
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile as _RclpyQoS, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.signals import SignalHandlerOptions

from distill_ros.ros import qos as q
from distill_ros.ros import signals
from distill_ros.ros.names import split_interface_name
from distill_ros.ros.spin_thread import SpinThread

__all__ = ["init", "shutdown", "ok", "spin", "spin_once", "spin_in_background",
           "get_global_executor", "get_interface", "Node", "Parameter", "Executor",
           "SpinThread", "serialize_message", "deserialize_message"]

_SPIN_WAKE_S = 0.1  # ros.spin returns to Python this often, so Ctrl-C is noticed


def init(args: Optional[Sequence[str]] = None) -> None:
    """Initialise rclpy (``args`` defaults to ``sys.argv``); a bad command line exits."""
    if rclpy.ok():
        return
    try:
        # rclpy's handlers would shut the context down at Ctrl-C, before the node's
        # cleanup could publish anything; distill_ros.ros.signals handles Ctrl-C instead.
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy_impl.RCLError as err:
        # rcl appends ", at <source file>:<line>" to each cause: noise for a user
        raise SystemExit(f"error: {re.sub(r', at /[^,]*', '', str(err))}") from None
    signals.install()


def shutdown() -> None:
    """Shut rclpy down if it is running."""
    if rclpy.ok():
        rclpy.shutdown()
    signals.uninstall()


ok = rclpy.ok
spin_once = rclpy.spin_once
get_global_executor = rclpy.get_global_executor


def spin(node: Any, executor: Optional[Executor] = None) -> None:
    """Run ``node``'s callbacks until shutdown or Ctrl-C (KeyboardInterrupt).

    The Ctrl-C handler raises KeyboardInterrupt wherever the main thread is. Inside
    rclpy's C++ (taking a message calls the message class's Python constructor),
    pybind11 turns it into "RuntimeError: Unable to convert call argument to Python
    object", which would end the node with a traceback and exit 1 instead of its
    cleanup. Whatever escapes ``spin_once`` after a Ctrl-C is therefore the interrupt.
    """
    executor = get_global_executor() if executor is None else executor
    executor.add_node(node)
    try:
        while executor.context.ok():
            try:
                executor.spin_once(timeout_sec=_SPIN_WAKE_S)
            except Exception:
                if signals.interrupted():
                    raise KeyboardInterrupt from None
                raise
            if signals.interrupted():  # an interrupt some callback swallowed
                raise KeyboardInterrupt
    finally:
        executor.remove_node(node)


class Parameter(rclpy.parameter.Parameter):
    """``rclpy.parameter.Parameter`` plus the DDS backend's message conversions."""

    def to_value_msg(self, value_cls: Optional[type] = None) -> Any:
        """Return an ``rcl_interfaces/msg/ParameterValue`` holding this value."""
        return self.get_parameter_value()

    @classmethod
    def from_value_msg(cls, name: str, msg: Any) -> "Parameter":
        """Build a parameter from an ``rcl_interfaces/msg/ParameterValue``."""
        value = rclpy.parameter.parameter_value_to_python(msg)
        if isinstance(value, tuple):
            value = list(value)
        elif hasattr(value, "tolist"):  # array.array for int/double arrays
            value = value.tolist()
        return cls(name, cls.Type(msg.type), value)


def to_rclpy_qos(qos: Union[q.QoSProfile, int, None]) -> _RclpyQoS:
    """Convert our profile (or a depth) to ``rclpy.qos.QoSProfile``."""
    profile = q.as_profile(qos)
    kwargs: Dict[str, Any] = dict(
        history=(HistoryPolicy.KEEP_ALL if profile.history == q.KEEP_ALL
                 else HistoryPolicy.KEEP_LAST),
        depth=profile.depth,
        reliability=(ReliabilityPolicy.RELIABLE if profile.reliability == q.RELIABLE
                     else ReliabilityPolicy.BEST_EFFORT),
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if profile.durability == q.TRANSIENT_LOCAL
                    else DurabilityPolicy.VOLATILE))
    if profile.lifespan_s is not None:
        kwargs["lifespan"] = Duration(nanoseconds=int(profile.lifespan_s * 1e9))
    return _RclpyQoS(**kwargs)


class Client:
    """Wraps ``rclpy.client.Client``; ``call(request, timeout_sec)`` raises TimeoutError.

    ``call`` works whether or not the node is spun: a node that no executor holds is
    spun here, on a private executor, until the reply comes (as on the DDS backend).
    Do not ``call`` from a callback of a single-threaded executor spinning this node.
    """

    def __init__(self, client: Any, node: Any) -> None:
        self._client = client
        self._node = node
        self.srv_type = client.srv_type
        self.srv_name = client.srv_name

    def service_is_ready(self) -> bool:
        """Return whether the service is available."""
        return self._client.service_is_ready()

    def wait_for_service(self, timeout_sec: Optional[float] = None) -> bool:
        """Block until the service is available or the timeout passes."""
        return self._client.wait_for_service(timeout_sec=timeout_sec)

    def call_async(self, request: Any) -> Any:
        """Send ``request``; the returned rclpy future completes while the node spins."""
        return self._client.call_async(request)

    def call(self, request: Any, timeout_sec: Optional[float] = None) -> Any:
        """Send ``request`` and wait for the reply."""
        future = self._client.call_async(request)
        holder = self._node.executor
        if holder is None or self._node not in holder.get_nodes():  # nobody spins the node
            executor = SingleThreadedExecutor(context=self._node.context)
            executor.add_node(self._node)
            try:
                executor.spin_until_future_complete(future, timeout_sec)
            finally:
                executor.remove_node(self._node)
                self._node.executor = None
                executor.shutdown()
        else:
            done = threading.Event()
            future.add_done_callback(lambda _f: done.set())
            done.wait(timeout_sec)
        if not future.done():
            self._client.remove_pending_request(future)
            raise TimeoutError(f"service {self.srv_name} did not answer within {timeout_sec} s")
        return future.result()

    def destroy(self) -> None:
        """Destroy the underlying client."""
        self._client.destroy()


class Node(_RclpyNode):
    """``rclpy.node.Node`` taking our QoS profiles and dict parameter overrides."""

    def __init__(self, node_name: str, *, namespace: Optional[str] = None,
                 parameter_overrides: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, parameter_overrides=overrides,
                         **kwargs)

    def declare_parameter(self, name: str, value: Any = None, descriptor: Any = None,
                          ignore_override: bool = False) -> Parameter:
        """Declare a parameter as rclpy does; a value its descriptor refuses is a ValueError."""
        try:
            return super().declare_parameter(name, value, descriptor, ignore_override)
        except (InvalidParameterValueException, InvalidParameterTypeException) as err:
            raise ValueError(f"parameter {name!r} cannot start at the given value: {err}; give "
                             "a value in range and of the declared type in the params file "
                             "or -p") from None

    def create_publisher(self, msg_type: Any, topic: str, qos_profile: Any = None,
                         **kwargs: Any) -> Any:
        """Create a publisher (our QoSProfile or a depth)."""
        return super().create_publisher(msg_type, topic, _qos(qos_profile), **kwargs)

    def create_subscription(self, msg_type: Any, topic: str, callback: Any,
                            qos_profile: Any = None, **kwargs: Any) -> Any:
        """Create a subscription (our QoSProfile or a depth)."""
        return super().create_subscription(msg_type, topic, callback, _qos(qos_profile),
                                           **kwargs)

    def create_client(self, srv_type: Any, srv_name: str, **kwargs: Any) -> Client:
        """Create a client whose ``call`` takes a timeout."""
        return Client(super().create_client(srv_type, srv_name, **kwargs), self)


def _qos(qos: Any) -> Any:
    return qos if isinstance(qos, _RclpyQoS) else to_rclpy_qos(qos)


def spin_in_background(*nodes: Node) -> SpinThread:
    """Spin ``nodes`` on a new executor in a daemon thread; call ``.stop()`` when done."""
    executor = SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    return SpinThread(executor)


def get_interface(name: str) -> type:
    """Return the rosidl-generated class of ``pkg/msg/Name`` or ``pkg/srv/Name``."""
    pkg, kind, type_name = split_interface_name(name)
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
    except ImportError:
        raise ImportError(f"ROS 2 package {pkg} is not installed: apt install "
                          f"ros-$ROS_DISTRO-{pkg.replace('_', '-')}") from None
    return getattr(module, type_name)

"""The rclpy backend: thin adapters so node code is the same as on the DDS backend.

Only what differs is wrapped: QoS profiles (ours -> rclpy's), parameter
overrides given as a dict, a client whose ``call`` takes a timeout, a
background spinner, and :func:`get_interface` importing the generated class.
Note: as in rclpy, ``Client.call`` needs the node spun by another thread
(:func:`spin_in_background`).
"""

import importlib
import threading
from typing import Any, Dict, Optional, Sequence, Union

import rclpy
from rclpy.duration import Duration
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.node import Node as _RclpyNode
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile as _RclpyQoS, ReliabilityPolicy

from distill_ros.ros import qos as q
from distill_ros.ros.names import split_interface_name
from distill_ros.ros.spin_thread import SpinThread

__all__ = ["init", "shutdown", "ok", "spin", "spin_once", "spin_in_background",
           "get_global_executor", "get_interface", "Node", "Parameter", "Executor",
           "SpinThread"]


def init(args: Optional[Sequence[str]] = None) -> None:
    """Initialise rclpy (``args`` defaults to ``sys.argv``)."""
    if not rclpy.ok():
        rclpy.init(args=args)


def shutdown() -> None:
    """Shut rclpy down if it is running."""
    if rclpy.ok():
        rclpy.shutdown()


ok = rclpy.ok
spin = rclpy.spin
spin_once = rclpy.spin_once
get_global_executor = rclpy.get_global_executor


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
    """Wraps ``rclpy.client.Client``; ``call(request, timeout_sec)`` raises TimeoutError."""

    def __init__(self, client: Any) -> None:
        self._client = client
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
        """Send ``request`` and wait for the reply (the node must be spinning elsewhere)."""
        done = threading.Event()
        future = self._client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_sec):
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
        return Client(super().create_client(srv_type, srv_name, **kwargs))


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

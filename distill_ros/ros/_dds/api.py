"""Module-level functions of the DDS backend (the ``rclpy.*`` equivalents)."""

import logging
import sys
import threading
from typing import Optional, Sequence

from distill_ros.ros import signals
from distill_ros.ros.names import split_interface_name
from distill_ros.ros._dds import ros_args
from distill_ros.ros._dds.context import close_context, get_context
from distill_ros.ros._dds.endpoints import deserialize_message, serialize_message
from distill_ros.ros._dds.executor import Executor
from distill_ros.ros._dds.node import Node
from distill_ros.ros._dds.parameters import Parameter
from distill_ros.ros._dds.typegen import get_generator
from distill_ros.ros.spin_thread import SpinThread

__all__ = ["init", "shutdown", "ok", "spin", "spin_once", "spin_in_background",
           "get_global_executor", "get_interface", "Node", "Parameter", "Executor",
           "SpinThread", "serialize_message", "deserialize_message"]

_EXECUTOR: Optional[Executor] = None
_EXECUTOR_LOCK = threading.Lock()


def init(args: Optional[Sequence[str]] = None) -> None:
    """Start the middleware: create this process's DDS participant.

    Args:
        args: command line (``sys.argv`` when None) whose ``--ros-args`` section sets
            parameters (``-p``, ``--params-file``), ``__ns`` / ``__node`` and topic or
            service remapping (``-r [node:]from:=to``).
    """
    try:
        ros_args.set_global_args(sys.argv if args is None else args)
    except (ValueError, FileNotFoundError) as err:  # a bad command line: say it, like rcl
        raise SystemExit(f"error: {err}") from None
    _console_logging()
    get_context()
    signals.install()


def _console_logging() -> None:
    """Print node logs from INFO up on stderr, as rcl does, unless logging is configured."""
    logger = logging.getLogger("distill_ros.node")
    if logger.handlers or logging.getLogger().handlers:
        return  # the application (or pytest) decides where logs go
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)s] [%(created).6f] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def shutdown() -> None:
    """Stop every executor and delete the participant (all nodes go with it)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        executor, _EXECUTOR = _EXECUTOR, None
    if executor is not None:
        executor.shutdown()
    close_context()
    signals.uninstall()


def ok() -> bool:
    """Return whether ``init()`` ran and ``shutdown()`` has not."""
    return get_context(create=False) is not None


def get_global_executor() -> Executor:
    """Return the executor used by :func:`spin` and :func:`spin_once`."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = Executor()
        return _EXECUTOR


def spin_once(node: Node, *, executor: Optional[Executor] = None,
              timeout_sec: Optional[float] = None) -> None:
    """Run the callbacks of ``node`` that are ready within ``timeout_sec``."""
    executor = executor or get_global_executor()
    executor.add_node(node)
    executor.spin_once(timeout_sec)


def spin(node: Node, executor: Optional[Executor] = None) -> None:
    """Run ``node``'s callbacks until shutdown or Ctrl-C (KeyboardInterrupt).

    The executor logs and survives a failing callback; a Ctrl-C that a callback turned
    into another exception still ends the spin (``until``), as on the rclpy backend.
    """
    executor = executor or get_global_executor()
    executor.add_node(node)
    try:
        executor.spin(until=signals.interrupted)
    finally:
        executor.remove_node(node)


def spin_in_background(*nodes: Node) -> SpinThread:
    """Spin ``nodes`` on a new executor in a daemon thread; call ``.stop()`` when done."""
    executor = Executor()
    for node in nodes:
        executor.add_node(node)
    return SpinThread(executor)


def get_interface(name: str) -> type:
    """Return the class of a message (``pkg/msg/Name``) or service (``pkg/srv/Name``)."""
    pkg, kind, type_name = split_interface_name(name)
    types = get_generator()
    if kind == "srv":
        return types.service(f"{pkg}/srv/{type_name}")
    if kind == "msg":
        return types.struct(f"{pkg}/msg/{type_name}")
    raise ValueError(f"actions are not supported by the DDS backend: {name!r}")

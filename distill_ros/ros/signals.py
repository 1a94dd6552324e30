"""Ctrl-C for nodes, the same on both backends: one interrupt, then cleanup runs to the end.

``ros2 launch`` forwards the terminal's Ctrl-C to every node, which the terminal
also delivers itself, so a node sees SIGINT twice. The first SIGINT (or SIGTERM)
raises ``KeyboardInterrupt`` in the main thread, which ends ``ros.spin``; later
ones are logged and ignored, so the node's cleanup (publishing the hold command,
closing the simulator, letting a training stage save) is not cut short. The
context stays valid until ``ros.shutdown()``: rclpy's own handlers, which shut
every context down at the first SIGINT, are not installed.
"""

import logging
import signal
import threading
from typing import Any, Dict

_LOG = logging.getLogger(__name__)
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_previous: Dict[int, Any] = {}
_state = {"interrupted": False}


def _on_signal(signum: int, _frame: Any) -> None:
    if _state["interrupted"]:
        _LOG.warning("%s ignored: already shutting down, cleanup is still running",
                     signal.Signals(signum).name)
        return
    _state["interrupted"] = True
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT/SIGTERM through the once-only handler (main thread only; else no-op)."""
    if threading.current_thread() is not threading.main_thread() or _previous:
        return
    _state["interrupted"] = False
    for sig in _SIGNALS:
        _previous[sig] = signal.signal(sig, _on_signal)


def uninstall() -> None:
    """Restore the handlers that were there before :func:`install`."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in list(_previous.items()):
        signal.signal(sig, handler)
        del _previous[sig]


def interrupted() -> bool:
    """Whether a SIGINT/SIGTERM arrived since :func:`install`."""
    return _state["interrupted"]

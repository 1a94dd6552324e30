"""A daemon thread spinning an executor: the same for both backends."""

import threading
from typing import Any


class SpinThread:
    """Spins ``executor`` (anything with ``spin()`` and ``shutdown()``); ``stop()`` ends it."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self._thread = threading.Thread(target=executor.spin, name="distill_ros-spin",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_sec: float = 2.0) -> None:
        """Shut the executor down and join the thread."""
        self.executor.shutdown()
        self._thread.join(timeout_sec)

    def __enter__(self) -> "SpinThread":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

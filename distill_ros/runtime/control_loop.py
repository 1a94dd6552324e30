"""A fixed-rate loop on the monotonic clock, in its own thread, with its timing statistics.

The loop wakes at ``t0 + k * period`` (absolute deadlines, so jitter never accumulates).
A tick that starts a whole period late is an *overrun*: its deadline was missed and the
schedule skips ahead instead of bursting to catch up. No ROS inside.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)


class LoopStats:
    """Tick times, tick compute times and obs->command latencies of the last few seconds.

    The obs->command latency is the age of the newest input when the command leaves: it
    includes the wait for the next tick (up to one period, set by the phase between the
    robot's clock and ours). The compute time is tick start to tick end: what the node
    itself costs.
    """

    def __init__(self, window: int) -> None:
        self._ticks: collections.deque = collections.deque(maxlen=window)
        self._compute: collections.deque = collections.deque(maxlen=window)
        self._latency: collections.deque = collections.deque(maxlen=window)
        self.overruns = 0
        self.ticks = 0
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        """Record that a tick ran at monotonic time ``now``."""
        with self._lock:
            self._ticks.append(now)
            self.ticks += 1

    def computed(self, seconds: float) -> None:
        """Record how long one tick's work took."""
        with self._lock:
            self._compute.append(seconds)

    def latency(self, seconds: float) -> None:
        """Record one obs->command latency."""
        with self._lock:
            self._latency.append(seconds)

    def summary(self) -> dict[str, float]:
        """Achieved rate (Hz), latency and compute p50/p99/max (ms) over the window."""
        with self._lock:
            ticks = np.array(self._ticks)
            lat = np.array(self._latency) * 1e3
            compute = np.array(self._compute) * 1e3
        rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 2 else 0.0
        out = {"rate_hz": float(rate)}
        for name, values in (("latency", lat), ("compute", compute)):
            pct = (np.percentile(values, [50, 99]).tolist() + [float(values.max())]
                   if values.size else [float("nan")] * 3)
            out.update({f"{name}_p50_ms": pct[0], f"{name}_p99_ms": pct[1],
                        f"{name}_max_ms": pct[2]})
        return {**out, "overruns": float(self.overruns), "ticks": float(self.ticks)}


class ControlLoop:
    """Calls ``tick(now)`` every ``period_s`` seconds from a daemon thread until stopped."""

    def __init__(self, period_s: float, tick: Callable[[float], None], stats: LoopStats,
                 name: str = "control-loop") -> None:
        if period_s <= 0:
            raise ValueError(f"control period must be positive seconds, got {period_s}")
        self.period_s = period_s
        self._tick = tick
        self.stats = stats
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop ticking and wait for the thread (never from inside a tick)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - deadline >= self.period_s:  # a whole period late: deadline missed
                self.stats.overruns += 1
                deadline = now
            self.stats.tick(now)
            try:
                self._tick(now)
            except Exception:  # a failing tick must not kill the loop; the node reports it
                log.exception("control tick raised")
            self.stats.computed(time.monotonic() - now)
            deadline += self.period_s
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

"""When a control node computes: a fixed-rate loop, or the arrival of an input; and timing stats.

:class:`ControlLoop` wakes at ``t0 + k * period`` (absolute deadlines, so jitter never
accumulates) in its own thread. A tick that starts a whole period late is an *overrun*: its
deadline was missed and the schedule skips ahead instead of bursting to catch up.
:class:`InputTrigger` computes when an input arrives instead, at most once per minimum
period; there a compute longer than the control period is the overrun. No ROS inside.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Optional

import numpy as np

log = logging.getLogger(__name__)


class LoopStats:
    """Tick times, tick compute times and obs->command latencies of the last few seconds.

    The obs->command latency is the age of the newest input when the command leaves: it
    includes the wait for the next tick (up to one period, set by the phase between the
    robot's clock and ours). The compute time is tick start to tick end: what the node
    itself costs; the policy time is the policy call alone, and the send time the command's
    hand-over to the middleware (its write to the readers), both in the same conditions;
    ``compute_less_send`` is each compute less its command's send: the node's own work (a
    compute that sent a hold instead keeps that send in it).
    """

    def __init__(self, window: int) -> None:
        self._ticks: collections.deque = collections.deque(maxlen=window)
        self._compute: collections.deque = collections.deque(maxlen=window)
        self._latency: collections.deque = collections.deque(maxlen=window)
        self._policy: collections.deque = collections.deque(maxlen=window)
        self._send: collections.deque = collections.deque(maxlen=window)
        self._own: collections.deque = collections.deque(maxlen=window)
        self._sending = 0.0  # the send time of the compute in progress
        self.overruns = 0
        self.ticks = 0
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        """Record that a tick ran at monotonic time ``now``."""
        with self._lock:
            self._ticks.append(now)
            self.ticks += 1

    def computed(self, seconds: float, started: Optional[float] = None) -> None:
        """Record how long one tick's work took (and, given ``started``, that it ran then)."""
        with self._lock:
            self._compute.append(seconds)
            self._own.append(seconds - self._sending)
            self._sending = 0.0
            if started is not None:  # one lock per compute instead of two
                self._ticks.append(started)
                self.ticks += 1

    def commanded(self, policy_s: float, latency_s: float, send_s: float) -> None:
        """Record one command's policy call, obs->command latency and send time (one lock)."""
        with self._lock:
            self._policy.append(policy_s)
            self._latency.append(latency_s)
            self._send.append(send_s)
            self._sending = send_s

    def summary(self) -> dict[str, float]:
        """Achieved rate (Hz); each series' p50/p99/max (ms) over the window."""
        with self._lock:  # plain copies: the compute thread waits on this lock
            ticks = np.array(list(self._ticks))
            copies = [(name, list(values)) for name, values in (
                ("latency", self._latency), ("compute", self._compute),
                ("policy", self._policy), ("send", self._send),
                ("compute_less_send", self._own))]
        series = {name: np.array(values) * 1e3 for name, values in copies}
        rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 2 else 0.0
        out = {"rate_hz": float(rate)}
        for name, values in series.items():
            pct = (np.percentile(values, [50, 99]).tolist() + [float(values.max())]
                   if values.size else [float("nan")] * 3)
            out.update({f"{name}_p50_ms": pct[0], f"{name}_p99_ms": pct[1],
                        f"{name}_max_ms": pct[2]})
        return {**out, "overruns": float(self.overruns), "ticks": float(self.ticks)}


class ControlLoop:
    """Calls ``tick()`` every ``period_s`` seconds from a daemon thread until stopped.

    ``period_s`` may be changed while it runs: the next deadline follows the new period.
    """

    def __init__(self, period_s: float, tick: Callable[[], None], stats: LoopStats,
                 name: str = "control-loop",
                 prepare: Optional[Callable[[], None]] = None) -> None:
        if period_s <= 0:
            raise ValueError(f"control period must be positive seconds, got {period_s}")
        self.period_s = period_s
        self._tick = tick
        self._prepare = prepare  # called first in the loop's own thread
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
        if self._prepare is not None:
            self._prepare()
        deadline = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - deadline >= self.period_s:  # a whole period late: deadline missed
                self.stats.overruns += 1
                deadline = now
            self.stats.tick(now)
            try:
                self._tick()
            except Exception:  # a failing tick must not kill the loop; the node reports it
                log.exception("control tick raised")
            self.stats.computed(time.monotonic() - now)
            deadline += self.period_s
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)


class InputTrigger:
    """Runs ``tick()`` when called (an input arrived), at most once per ``min_period_s``.

    Args:
        tick: the control step.
        stats: receives tick times, compute times and overruns.
        period_s: the control period; a compute longer than this counts as an overrun.
        min_period_s: arrivals sooner than this after the last compute only store inputs.
        clock: monotonic seconds.
        prepare: called once, in the thread of the first call, before its compute.
    """

    def __init__(self, tick: Callable[[], None], stats: LoopStats, period_s: float,
                 min_period_s: float, clock: Callable[[], float] = time.monotonic,
                 prepare: Optional[Callable[[], None]] = None) -> None:
        self._tick, self.stats, self.clock = tick, stats, clock
        self.period_s, self.min_period_s = period_s, min_period_s
        self._last: Optional[float] = None
        self._prepare = prepare

    def __call__(self) -> bool:
        """Compute now if the minimum period has passed; return whether it did."""
        prepare = self._prepare
        if prepare is not None:  # the first call: in the thread that computes from now on
            self._prepare = None
            prepare()
        now = self.clock()
        if self._last is not None and now - self._last < self.min_period_s:
            return False
        self._last = now
        try:
            self._tick()
        except Exception:  # a failing tick must not kill the executor; the node reports it
            log.exception("control tick raised")
        spent = self.clock() - now
        self.stats.computed(spent, started=now)
        if spent > self.period_s:
            self.stats.overruns += 1
        return True


class Cadence:
    """When a node computes: every period (``timer``), or on its trigger input (``input``).

    In ``input`` mode a watchdog thread calls ``watch`` every ``watch_period_s``, since no
    compute comes when the trigger input stops. ``prepare`` runs once in the thread that
    computes (the loop's, or the one delivering the trigger input), before its first compute:
    the place to raise that thread's priority.
    """

    def __init__(self, mode: str, step: Callable[[], None], watch: Callable[[], None],
                 stats: LoopStats, period_s: float, min_period_s: float,
                 watch_period_s: float, prepare: Optional[Callable[[], None]] = None) -> None:
        if mode not in ("timer", "input"):
            raise ValueError(f"trigger must be 'timer' or 'input', got {mode!r}")
        self.trigger: Optional[InputTrigger] = None
        if mode == "input":
            self.trigger = InputTrigger(step, stats, period_s, min_period_s, prepare=prepare)
            self.loop = ControlLoop(watch_period_s, watch, LoopStats(window=2),
                                    name="input-watchdog")
        else:
            self.loop = ControlLoop(period_s, step, stats, prepare=prepare)

    def start(self) -> None:
        """Start the loop thread (the compute loop, or the input mode's watchdog)."""
        self.loop.start()

    def stop(self) -> None:
        """Stop computing: inputs no longer trigger, the loop thread ends."""
        self.trigger = None
        self.loop.stop()

    def on_input(self) -> None:
        """The trigger input arrived: compute if the minimum period has passed."""
        trigger = self.trigger
        if trigger is not None:
            trigger()

    def retime(self, period_s: float, min_period_s: float, watch_period_s: float) -> None:
        """New periods, from the next tick on."""
        if self.trigger is not None:
            self.trigger.period_s, self.trigger.min_period_s = period_s, min_period_s
            self.loop.period_s = watch_period_s
        else:
            self.loop.period_s = period_s

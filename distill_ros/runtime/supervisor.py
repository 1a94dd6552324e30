"""Per-tick decisions of a policy node, ROS-free: run the policy or hold, and say why.

Each control tick (a timer tick, or the arrival of the trigger input) calls
:meth:`Supervisor.step`, which sends exactly one of these, or nothing:

* nothing, while some input has never arrived (ERROR naming it once the watchdog time has
  passed since activation): no command has been sent yet, so there is nothing to hold;
* the hold command, during an emergency stop;
* the hold command, when the oldest input is older than the watchdog time (ERROR);
* the hold command, when an input is NaN/Inf (WARN naming the input; the policy is not run);
* the hold command, when the policy raises (ERROR) or returns NaN/Inf (WARN);
* the policy's command through the safety filter otherwise.

Warnings are events: they clear after ``warn_clear_s`` seconds without a new one. Errors last
while their cause does. Malformed messages (joint names and positions of different lengths,
unlabelled array elements) are dropped and reported by source. The supervisor reads time only
from its ``clock``, so tests drive it with a fake clock, and it sends through ``send``,
called under its lock, so no tick can send a policy command after an e-stop's hold.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from distill_ros.runtime.control_loop import LoopStats
from distill_ros.runtime.observation import GroupStore, ObservationAssembler
from distill_ros.runtime.safety import SafetyFilter

OK, WARN, ERROR = "OK", "WARN", "ERROR"


class Policy(NamedTuple):
    """What the loop runs: a runner, how its observation is read, and its ``act``.

    ``inputs`` has ``read() -> (obs, oldest, newest)``, ``non_finite(obs) -> [source]`` and
    ``never_received() -> [name]`` (see `model_loader.PolicyInputs`); ``act(obs)`` is the
    runner's, possibly without per-call allocations.
    """

    runner: Any
    inputs: Any
    act: Callable[[Any], np.ndarray]


@dataclass
class Counters:
    """Events since configure, for diagnostics."""

    nan_inputs: int = 0        # ticks held because an input was NaN/Inf
    nan_actions: int = 0       # policy outputs replaced by a hold
    inputs_rejected: int = 0   # malformed messages dropped
    policy_errors: int = 0     # ticks whose policy call raised
    watchdog_trips: int = 0    # fresh -> stale transitions


class Supervisor:
    """Decides, tick by tick, what a policy node sends; keeps its status and counters.

    Args:
        inputs: latest value and arrival time of every named input.
        send: publishes one command (policy order); called under the supervisor's lock.
        clock: monotonic seconds.
        watchdog_timeout_s: oldest input age beyond which the robot is held.
        warn_clear_s: a WARN clears after this long without a new warning.
        on_status: called with ``(level, message)`` whenever the status changes.
        stats: receives one obs->command latency per policy command.
        groups: latest whole groups (points, command), beside the named elements.
    """

    def __init__(self, inputs: ObservationAssembler, send: Callable[[np.ndarray], None],
                 clock: Callable[[], float] = time.monotonic, watchdog_timeout_s: float = 0.5,
                 warn_clear_s: float = 1.0,
                 on_status: Optional[Callable[[str, str], None]] = None,
                 stats: Optional[LoopStats] = None, groups: Optional[GroupStore] = None) -> None:
        self.inputs, self.send, self.clock = inputs, send, clock
        self.groups = groups if groups is not None else GroupStore()
        self.watchdog_timeout_s, self.warn_clear_s = watchdog_timeout_s, warn_clear_s
        self.on_status, self.stats = on_status, stats
        self.period_s = 0.0                     # seconds between commands, for the rate limit
        self.policy: Optional[Policy] = None
        self.safety: Optional[SafetyFilter] = None
        self.counts = Counters()
        self.status = (OK, "unconfigured")
        self.estop = False
        self.stale = False
        self._clears_on_run = False             # the current ERROR ends with a good tick
        self._warn_until = -math.inf
        self._activated_at = math.inf
        self._late_replans_seen = 0
        self._lock = threading.RLock()          # one tick, hold, e-stop or swap at a time

    # -- configuration ---------------------------------------------------------------------
    def configure(self, policy: Policy, safety: SafetyFilter, period_s: float) -> None:
        """Run ``policy`` through ``safety`` at one command per ``period_s``."""
        with self._lock:
            self.policy, self.safety, self.period_s = policy, safety, period_s
            self.counts = Counters()

    def free(self) -> None:
        """Forget the policy: nothing is sent until the next configure."""
        with self._lock:
            self.policy = self.safety = None
            self._activated_at = math.inf

    def swap(self, policy: Policy, safety: SafetyFilter) -> bool:
        """Replace the policy between two ticks; False if freed meanwhile (then dropped)."""
        with self._lock:
            if self.policy is None:
                return False
            safety.last = self.safety.last
            self.policy, self.safety = policy, safety
            return True

    def set_safety(self, safety: SafetyFilter) -> None:
        """New limits from the next command on; the rate limit continues from the last one."""
        with self._lock:
            if self.safety is not None:
                safety.last = self.safety.last
            self.safety = safety

    # -- lifecycle and services ------------------------------------------------------------
    def activate(self) -> None:
        """Start deciding: forget stale state; the never-arrived clock starts now."""
        with self._lock:
            self.stale = False
            self._reset_runner()
            self._activated_at = self.clock()

    def deactivate(self) -> None:
        """Stop deciding and send the hold."""
        with self._lock:
            self._activated_at = math.inf
            self.hold()

    def hold(self) -> bool:
        """Send the hold command (zero velocities, last positions); False if unconfigured."""
        with self._lock:
            if self.safety is None:
                return False
            command = self.safety.hold()
            self.safety.mark_held(command)
            self.send(command)
            return True

    def engage_estop(self) -> None:
        """Hold now and at every tick until :meth:`clear_estop`."""
        with self._lock:
            self.estop = True
            self.hold()
            self.set_status(ERROR, "emergency stop: holding until ~/clear_emergency_stop")

    def clear_estop(self) -> bool:
        """Let the policy drive again; return whether an e-stop was engaged."""
        with self._lock:
            was, self.estop = self.estop, False
            if was:  # else the status is another condition's: leave it
                self._reset_runner()
                self.set_status(OK, "emergency stop cleared")
            return was

    def warn(self, message: str) -> None:
        """Report an event at WARN (an ERROR outranks it); it clears after ``warn_clear_s``."""
        with self._lock:
            self._warn_until = self.clock() + self.warn_clear_s
            if self.status[0] != ERROR:
                self.set_status(WARN, message)

    # -- inputs ----------------------------------------------------------------------------
    def update_joints(self, names: Sequence[str], positions: Sequence[float],
                      source: str) -> bool:
        """Store one ``JointState``'s positions; a malformed one is dropped and reported."""
        if len(names) != len(positions) and (len(positions) or self._uses_joints(names)):
            self._reject(f"{source}: {len(names)} joint names but {len(positions)} positions")
            return False
        self.inputs.update_joints(names, positions, self.clock())
        return True

    def update_array(self, labels: Sequence[str], data: Sequence[float], source: str) -> bool:
        """Store one labelled array; one with unlabelled elements is dropped and reported."""
        if len(labels) != len(data) or not all(labels):
            named = sum(1 for label in labels if label)
            self._reject(f"{source}: {len(data)} values but {named} labels; name every element "
                         "in layout.dim[i].label")
            return False
        self.inputs.update_array(labels, data, self.clock())
        return True

    def update_group(self, group: str, parse: Callable[[], Mapping[str, np.ndarray]],
                     source: str) -> bool:
        """Store a whole group (``parse`` a cloud or a values+mask pair); report a bad one."""
        try:
            arrays = parse()
        except ValueError as err:
            self._reject(f"{source}: {err}")
            return False
        self.groups.update(group, arrays, self.clock())
        return True

    def _uses_joints(self, names: Sequence[str]) -> bool:
        joints = self.inputs.joint_map.values()
        return any(name in joints for name in names)

    def _reject(self, why: str) -> None:
        with self._lock:
            self.counts.inputs_rejected += 1
            self.warn(f"malformed input dropped: {why}")

    # -- the tick --------------------------------------------------------------------------
    def step(self) -> None:
        """One control tick: send the policy's command, the hold, or nothing (see module)."""
        with self._lock:
            policy = self.policy
            if policy is None:
                return
            if self.estop:
                self.hold()
                return
            obs, oldest, newest = policy.inputs.read()
            now = self.clock()
            if not self._fresh(now, oldest, newest) or not self._finite(obs):
                return
            try:
                action = policy.act(obs)
                acted = self.clock()
            except Exception as err:  # noqa: BLE001 - a failing model must not stall the robot
                self.hold()
                self.counts.policy_errors += 1
                self.set_status(ERROR, f"policy failed ({type(err).__name__}: {err}), "
                                "holding", clears_on_run=True)
                return
            safety = self.safety
            command, note = safety.apply(action, self.period_s, self.inputs.joint_positions()
                                         if safety.position_limits else None)
            if note:
                self.counts.nan_actions += 1
                self.warn(f"{note} from the policy replaced by a hold")
            else:
                self._ran(now)
            sending = self.clock()
            self.send(command)
            if self.stats is not None:  # one lock per command for the three figures
                sent = self.clock()
                self.stats.commanded(acted - now, sent - newest, sent - sending)

    def watch(self) -> None:
        """Hold and report if the inputs went stale or never came, without running the policy.

        The watchdog of input-triggered mode, where no tick comes when the trigger stops.
        """
        with self._lock:
            if self.policy is not None and not self.estop:
                _, oldest, newest = self.policy.inputs.read()
                self._fresh(self.clock(), oldest, newest)

    def _fresh(self, now: float, oldest: float, newest: float) -> bool:
        """Whether the policy may run on the inputs; hold or report when not."""
        if newest == -math.inf or (oldest == -math.inf and not self.stale):
            # nothing is sent until every input arrived once; say which never did
            if now - self._activated_at > self.watchdog_timeout_s:
                never = self.policy.inputs.never_received()
                self.set_status(ERROR, f"no data yet for {never}: check the input topics "
                                "(joint_states_topic, array_topics, points_groups, "
                                "command_groups) and their publishers", clears_on_run=True)
            return False
        age = now - oldest
        if age > self.watchdog_timeout_s:
            self.hold()
            if not self.stale:
                self.stale = True
                self.counts.watchdog_trips += 1
                self.set_status(ERROR, f"watchdog: inputs stale ({age:.3f} s), holding")
            return False
        if self.stale:
            self.stale = False
            self._reset_runner()  # a queued chunk was planned from inputs now stale
            self.set_status(OK, "inputs fresh again: running")
        return True

    def _finite(self, obs: np.ndarray) -> bool:
        """Whether every input is finite; else hold and name the ones that are not."""
        bad = self.policy.inputs.non_finite(obs)
        if not bad:
            return True
        self.hold()
        self.counts.nan_inputs += 1
        self.warn(f"non-finite input {', '.join(bad)}: holding instead of running the policy")
        return False

    def _ran(self, now: float) -> None:
        """A good policy command: end the errors it ends, and warnings past their time."""
        level = self.status[0]
        if ((level == ERROR and self._clears_on_run)
                or (level == WARN and now >= self._warn_until)):
            self.set_status(OK, "running")

    def _reset_runner(self) -> None:
        """Forget queued chunks and observation history: they describe the past."""
        if self.policy is not None and hasattr(self.policy.runner, "reset"):
            self.policy.runner.reset()

    def set_status(self, level: str, message: str, clears_on_run: bool = False) -> None:
        """Set the status; ``clears_on_run``: an ERROR that the next good command ends."""
        self._clears_on_run = clears_on_run
        if self.status != (level, message):
            self.status = (level, message)
            if self.on_status is not None:
                self.on_status(level, message)

    # -- diagnostics -----------------------------------------------------------------------
    def report(self) -> tuple[str, str, dict]:
        """``(level, message, values)`` for /diagnostics; new late chunk re-plans raise WARN."""
        with self._lock:
            level, message = self.status
            values: dict = {**asdict(self.counts), "emergency_stop": self.estop,
                            "watchdog_stale": self.stale}
            runner = self.policy.runner if self.policy is not None else None
        if hasattr(runner, "diagnostics"):  # chunked: queue length, late re-plans
            values.update({f"chunk_{k}": v for k, v in runner.diagnostics().items()})
        late = int(values.get("chunk_late_replans", 0))
        if late > self._late_replans_seen and level == OK:  # new since the last report
            level, message = WARN, (f"{late - self._late_replans_seen} late re-plan(s) "
                                    f"since the last report ({late} in all); {message}")
        self._late_replans_seen = late
        return level, message, values

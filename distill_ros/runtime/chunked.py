"""Run action-chunk policies one control tick at a time, from a queue that never runs dry silently.

A chunked policy (Diffusion Policy, OneDP) returns H actions per call; the runner executes
`n_exec` of them and re-plans (receding horizon, Chi et al. 2023), so a plan starts every
`n_exec` ticks from the observation of that tick. Synchronously, the plan is computed inside
that tick; a plan slower than the control period is counted as late. Asynchronously, the
plan runs in a worker thread while the old chunk's tail (actions n_exec..H-1) keeps the
robot moving; when the new chunk arrives `d` ticks later, its first `d` actions (already
overtaken by time) are skipped. If the tail runs out before the plan arrives, the runner
holds the last action, counts the re-plan as late and logs a warning: never a silent stall.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from distill_ros.export.metadata import PolicyMetadata
from distill_ros.runtime.session import open_session
from distill_ros.spec import Spec

log = logging.getLogger(__name__)


class ChunkPlanner(Protocol):
    """(1, obs_history * obs_dim) physical observation history -> (1, H, act_dim) actions."""

    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Plan one chunk; `rng` is the source of the sampling noise."""


class OnnxChunkPlanner:
    """An exported chunk generator: inputs `obs` (history flattened) and `noise`."""

    def __init__(self, path: str | Path, want_gpu: bool = True) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, want_gpu)
        meta = PolicyMetadata.from_session(self.session, str(self.path))
        inputs = [i.name for i in self.session.get_inputs()]
        if meta.chunking is None or inputs != ["obs", "noise"]:
            raise ValueError(f"ONNX file {self.path} is not an action-chunk policy (inputs "
                             f"{inputs}, policy kind {meta.policy_kind}); export the one-step "
                             "generator with distill_ros (distill.algorithm: onestep)")
        self.metadata = meta
        self.obs_spec = meta.obs.groups[0].channels
        self.act_spec = meta.act
        self.control_rate_hz = meta.control_rate_hz
        self.horizon = meta.chunking.chunk_length
        self.n_exec = meta.chunking.n_exec
        self.obs_history = meta.chunking.obs_history
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Plan one chunk per row of `obs`, with standard normal noise from `rng`."""
        obs = np.asarray(obs, np.float32)
        noise = rng.standard_normal((len(obs), self.horizon, self.act_spec.dim))
        return self.session.run(None, {"obs": obs, "noise": noise.astype(np.float32)})[0]


@dataclass
class ChunkStats:
    """Counters for diagnostics: a late re-plan is one whose chunk was not there in time."""

    ticks: int = 0
    replans: int = 0
    late_replans: int = 0
    starved_ticks: int = 0      # ticks that held the last action: the queue was empty
    plan_s_last: float = 0.0
    plan_s_max: float = 0.0


class ChunkedPolicy:
    """One physical action per control tick from a chunk planner.

    Args:
        planner: makes a chunk from the flattened observation history.
        obs_dim: elements per observation frame.
        horizon: H, actions per chunk.
        n_exec: actions of each chunk executed before the next plan takes over.
        obs_history: frames given to the planner, oldest first (the first frame of an
            episode repeats into the missing past).
        seed: seeds the sampling noise; `reset(seed)` re-seeds per episode.
        asynchronous: plan in a worker thread while the old chunk's tail keeps executing;
            plans may then take up to H - n_exec ticks without being late.
        control_period_s: synchronous only: a plan slower than this is counted late.
        clock: monotonic time source (seconds), replaceable in tests.
    """

    def __init__(self, planner: ChunkPlanner, obs_dim: int, horizon: int, n_exec: int,
                 obs_history: int = 1, seed: int = 0, asynchronous: bool = False,
                 control_period_s: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= n_exec <= horizon:
            raise ValueError(f"n_exec must be in [1, horizon={horizon}], got {n_exec}")
        self.planner, self.obs_dim = planner, obs_dim
        self.horizon, self.n_exec, self.obs_history = horizon, n_exec, obs_history
        self.asynchronous = asynchronous
        self.control_period_s, self.clock = control_period_s, clock
        self._pool = ThreadPoolExecutor(1, "chunk-planner") if asynchronous else None
        self.reset(seed)

    @classmethod
    def from_onnx(cls, path: str | Path, seed: int = 0, want_gpu: bool = True,
                  **kwargs) -> "ChunkedPolicy":
        """A runner for an exported chunk policy, shaped by the file's metadata."""
        planner = OnnxChunkPlanner(path, want_gpu)
        if not kwargs.get("asynchronous"):
            kwargs.setdefault("control_period_s", 1.0 / planner.control_rate_hz)
        return cls(planner, planner.obs_spec.dim, planner.horizon, planner.n_exec,
                   planner.obs_history, seed, **kwargs)

    # -- what a deployment node reads off any runner (delegated to an ONNX planner) ---------
    @property
    def obs_spec(self) -> Spec:
        """Observation layout of one frame."""
        return self.planner.obs_spec

    @property
    def act_spec(self) -> Spec:
        """Action layout of one tick."""
        return self.planner.act_spec

    @property
    def control_rate_hz(self) -> float:
        """The rate the chunks were made for."""
        return self.planner.control_rate_hz

    @property
    def path(self) -> Path:
        """The planner's file."""
        return self.planner.path

    @property
    def sha256(self) -> str:
        """Hash of the planner's file, for diagnostics."""
        return self.planner.sha256

    def describe(self) -> str:
        """One line for logs."""
        return (f"{self.path.name}: action chunks of {self.horizon}, {self.n_exec} executed "
                f"per plan, {self.obs_spec.dim} obs -> {self.act_spec.dim} actions at "
                f"{self.control_rate_hz:g} Hz")

    def reset(self, seed: Optional[int] = None) -> None:
        """Start a new episode: empty history and queue; re-seed the noise if `seed` given.

        Never blocks: a plan still in flight is abandoned (its chunk and any error are
        dropped; it drew its noise from the generator it was started with). The counters
        in `stats` are cumulative over the runner's life, so diagnostics keep late
        re-plans across episodes and e-stops.
        """
        if seed is not None or not hasattr(self, "rng"):
            self.rng = np.random.default_rng(seed)
        if not hasattr(self, "stats"):
            self.stats = ChunkStats()
        self._history: deque = deque(maxlen=self.obs_history)
        self._queue: deque = deque()
        self._index = 0              # index, in the chunk being executed, of the next action
        self._last: Optional[np.ndarray] = None
        self._future: Optional[Future] = None
        self._request_tick = 0
        self._late_flagged = False

    def close(self) -> None:
        """Stop the planning thread (asynchronous mode)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def wait_planning(self, timeout: Optional[float] = None) -> None:
        """Block until the plan in flight (if any) has finished; it is taken at the next tick."""
        if self._future is not None:
            self._future.exception(timeout)

    def diagnostics(self) -> dict:
        """Counters and queue length, for /diagnostics."""
        return {**asdict(self.stats), "queue": len(self._queue), "horizon": self.horizon,
                "n_exec": self.n_exec, "planning": self._future is not None}

    # -- the tick ------------------------------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        """(obs_dim,) or (1, obs_dim) physical observation -> the action for this tick."""
        obs = np.asarray(obs, np.float32)
        frame = obs.reshape(-1)
        if frame.shape != (self.obs_dim,):
            raise ValueError(f"observation must have {self.obs_dim} elements (one frame, one "
                             f"robot), got shape {obs.shape}")
        if not self._history:
            self._history.extend([frame] * self.obs_history)
        self._history.append(frame)
        self.stats.ticks += 1
        self._collect(block=False)
        if self._future is None and (not self._queue or self._index >= self.n_exec):
            self._request()          # n_exec actions done: plan from this tick's history
        if self._last is None or not self.asynchronous:
            self._collect(block=True)   # nothing to hold yet, or planning is inline
        action = self._pop()
        return action.reshape(obs.shape[:-1] + (-1,)) if obs.ndim > 1 else action

    __call__ = act

    def _history_row(self) -> np.ndarray:
        return np.concatenate(list(self._history))[None]

    def _request(self) -> None:
        """Start a plan from the current history (inline or in the worker thread)."""
        self._request_tick = self.stats.ticks
        self._late_flagged = False
        row = self._history_row()
        if self._pool is None:
            done: Future = Future()
            done.set_result(self._timed_plan(row, self.rng))
            self._future = done
        else:
            self._future = self._pool.submit(self._timed_plan, row, self.rng)

    def _timed_plan(self, row: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, float]:
        start = self.clock()
        chunk = np.asarray(self.planner(row, rng), np.float32)
        if chunk.shape[1:] != (self.horizon, chunk.shape[-1]) or not np.all(np.isfinite(chunk)):
            raise ValueError(f"planner returned a chunk of shape {chunk.shape} (want (1, "
                             f"{self.horizon}, act_dim)) or with NaN/Inf")
        return chunk[0], self.clock() - start

    def _collect(self, block: bool) -> None:
        """Take a finished plan: queue its actions from the one due at this tick."""
        if self._future is None or not (block or self._future.done()):
            return
        future, self._future = self._future, None   # a failed plan must not stick around
        chunk, seconds = future.result()             # a planner error surfaces here, once
        s = self.stats
        s.replans += 1
        s.plan_s_last, s.plan_s_max = seconds, max(s.plan_s_max, seconds)
        if (not self.asynchronous and self.control_period_s is not None
                and seconds > self.control_period_s):
            self._flag_late(f"planning took {seconds * 1e3:.1f} ms, over the "
                            f"{self.control_period_s * 1e3:.1f} ms control period")
        # the chunk starts at the request tick; skip the actions time has overtaken
        self._index = min(self.stats.ticks - self._request_tick, self.horizon - 1)
        self._queue = deque(chunk[self._index:])

    def _pop(self) -> np.ndarray:
        if self._queue:
            self._last = self._queue.popleft()
            self._index += 1
            return self._last.copy()
        self.stats.starved_ticks += 1
        self._flag_late("the action queue ran dry; holding the last action")
        return self._last.copy()

    def _flag_late(self, why: str) -> None:
        if self._late_flagged:
            return
        self._late_flagged = True
        self.stats.late_replans += 1
        log.warning("chunked policy: late re-plan (%s); %d late re-plan(s) so far", why,
                    self.stats.late_replans)

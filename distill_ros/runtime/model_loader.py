"""Open policy files and hot-swap them off the control loop, ROS-free.

:func:`open_policy` opens and checks one file and returns the `Policy` a supervisor runs:
the runner, a `PolicyInputs` that reads its observation groups from the stored inputs, and
an ``act`` that reuses its input arrays (:func:`fast_act`). :class:`ModelLoader` runs such
loads in a loader thread: a caller (a parameter change) waits at most ``wait_s`` for it; a
slower load (a TensorRT engine build, a cold GPU) finishes in the background, so the caller's
thread keeps serving inputs, and is then swapped in, or reported through ``on_failed`` so
the caller can revert its setting. A load that outlives :meth:`ModelLoader.invalidate` (a
cleanup) is dropped, never swapped into what came after.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from distill_ros.runtime.observation import GroupStore, ObservationAssembler
from distill_ros.runtime.supervisor import Policy
from distill_ros.spec import ObsSpec

log = logging.getLogger(__name__)


def load_runner(path: str, use_gpu: bool) -> Any:
    """Open a policy file: ``act(obs)``, ``obs_spec``, ``act_spec``, ``control_rate_hz``.

    Action-chunk policies (OneDP, diffusion) get a `ChunkedPolicy`: every n_exec ticks it
    plans in a worker thread while the previous chunk's tail keeps the robot moving, and
    counts re-plans that came too late.
    """
    from distill_ros.runtime.chunked import ChunkedPolicy
    from distill_ros.runtime.onnx_policy import OnnxPolicy
    from distill_ros.export.metadata import PolicyMetadata

    if PolicyMetadata.read(path).chunking is not None:
        return ChunkedPolicy.from_onnx(path, want_gpu=use_gpu, asynchronous=True)
    return OnnxPolicy(path, want_gpu=use_gpu)


class PolicyInputs:
    """Reads one policy's observation from the stored inputs.

    Vector groups are assembled element by element, by name (joints and labelled arrays);
    ``points`` and ``command`` groups arrive whole (a cloud, a values+mask pair).

    Args:
        groups: the policy's observation groups (a flat policy: one vector group).
        assembler: latest named elements.
        store: latest whole groups.
        sourced: names of the whole groups that have a source configured.
    """

    def __init__(self, groups: ObsSpec, assembler: ObservationAssembler, store: GroupStore,
                 sourced: Sequence[str] = ()) -> None:
        self.flat, self.assembler, self.store = groups.is_flat, assembler, store
        self.vectors: list = []                  # (input name, read, element names)
        self.whole: list[str] = []
        for group in groups.groups:
            if group.kind == "vector":
                names = tuple(group.channels.names)
                self.vectors.append((group.name, assembler.reader(assembler.layout(names)),
                                     names))
            elif group.kind in ("points", "command") and group.name in sourced:
                self.whole.append(group.name)
            else:
                raise ValueError(f"observation group {group.name!r} ({group.kind}) has no "
                                 "source: a points group comes from a PointCloud2 "
                                 "(points_groups: ['name:topic']), a command group from a "
                                 "values+mask pair (command_groups: ['name:values:mask'])")
        self._joints = assembler.joint_map

    def read(self) -> tuple[Any, float, float]:
        """``(observation, oldest, newest)`` arrival times; oldest -inf if one never came."""
        if self.flat:
            return self.vectors[0][1]()
        obs, oldest, newest = self.store.assemble(self.whole)
        for name, read, _ in self.vectors:
            obs[name], old, new = read()
            oldest, newest = min(oldest, old), max(newest, new)
        return obs, oldest, newest

    def non_finite(self, obs: Any) -> list[str]:
        """Sources of NaN/Inf elements (``palm_x (joint ee_x)``); [] when all finite."""
        # float32 elements: their float64 sum is finite exactly when all of them are
        if self.flat and math.isfinite(sum(obs.tolist())):
            return []
        arrays = [obs] if self.flat else [obs[name] for name, _, _ in self.vectors]
        bad = []
        for array, (_, _, names) in zip(arrays, self.vectors):
            if not math.isfinite(sum(array.tolist())):
                bad += [self._source(names[i]) for i in np.flatnonzero(~np.isfinite(array))]
        return bad

    def never_received(self) -> list[str]:
        """Elements and whole groups no message has carried yet."""
        return [n for _, _, names in self.vectors
                for n in self.assembler.never_received(names)] + \
            self.store.never_received(self.whole)

    def _source(self, name: str) -> str:
        joint = self._joints.get(name)
        return f"{name} (joint {joint})" if joint else name


def fast_act(runner: Any) -> Callable[[Any], np.ndarray]:
    """``runner.act`` without per-call allocations for an ONNX policy (IO-bound arrays)."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    if not isinstance(runner, OnnxPolicy):
        return runner.act  # a chunked runner keeps its own history and queue
    return runner.bound_act()


def open_policy(path: str, use_gpu: bool, inputs: ObservationAssembler,
                actions: Optional[Sequence[str]] = None, store: Optional[GroupStore] = None,
                sourced: Sequence[str] = ()) -> Policy:
    """Open and check a model; raise ValueError/FileNotFoundError with the reason.

    Args:
        path: the exported ONNX file.
        use_gpu: use CUDA/TensorRT when ONNX Runtime has them.
        inputs: every vector element of the model must have a source here.
        actions: the running model's action names: a hot swap must command the same.
        store: where whole groups (points, command) arrive; ``sourced`` names those that
            have a source.
    """
    if not path:
        raise ValueError("parameter model_path is empty: set it to an exported policy.onnx")
    runner = load_runner(str(Path(path).expanduser()), use_gpu)
    groups = getattr(runner, "groups", None) or ObsSpec.flat(runner.obs_spec)
    reader = PolicyInputs(groups, inputs, store or GroupStore(), sourced)
    names = list(runner.act_spec.names)
    if actions is not None and names != list(actions):
        raise ValueError(f"{path} commands {names}, the running model commands "
                         f"{list(actions)}: same actions needed for a hot swap")
    zeros = {n: np.zeros(s, np.float32) for n, s in groups.input_shapes().items()}
    act = fast_act(runner)
    action = np.asarray(act(zeros[groups.input_names[0]] if groups.is_flat else zeros))
    if action.shape != (runner.act_spec.dim,):  # also warms the session up before a swap
        raise ValueError(f"{path} returns shape {action.shape}, expected "
                         f"({runner.act_spec.dim},) actions {names}")
    if hasattr(runner, "reset"):
        runner.reset()  # drop the warm-up chunk: the first real tick plans afresh
    return Policy(runner, reader, act)


def wait_until(predicate: Callable[[], bool], timeout_s: float,
               clock: Callable[[], float] = time.monotonic) -> bool:
    """Poll ``predicate`` every 10 ms; whether it held within ``timeout_s``."""
    deadline = clock() + timeout_s
    while not predicate():
        if clock() > deadline:
            return False
        time.sleep(0.01)
    return True


class ModelLoader:
    """Loads models in a loader thread and swaps them in; counts swaps and rejections.

    Args:
        load: path -> model (raises with the reason for a bad file).
        swap_in: installs a loaded model; returns False if it was no longer wanted.
        on_failed: ``(path, why, running)`` for a load that failed in the background.
    """

    def __init__(self, load: Callable[[str], Any], swap_in: Callable[[Any], bool],
                 on_failed: Callable[[str, str, str], None]) -> None:
        self.load, self.swap_in, self.on_failed = load, swap_in, on_failed
        self.loading: Optional[str] = None   # path being loaded in the background
        self.swaps = 0
        self.rejected = 0
        self._generation = 0                 # bumped by invalidate: late loads drop
        self._reverting: Optional[int] = None
        self._lock = threading.Lock()        # generation checks vs. swaps
        self._idle = threading.Event()
        self._idle.set()

    def request(self, path: str, wait_s: float, running: str) -> str:
        """Load ``path`` and swap it in; return why not (``running`` keeps running), or ''.

        '' also when the load outlives ``wait_s`` (any load, for 0): it then completes in
        the background.
        """
        if self.loading is not None:
            return (f"model_path rejected: {self.loading} is still loading; set it again "
                    "once /diagnostics shows it swapped in or rejected")
        generation, future = self._generation, Future()
        # daemon: a load that never ends (a hung GPU driver) must not block the process exit
        threading.Thread(target=self._load_into, args=(future, path), daemon=True,
                         name="model-loader").start()
        try:
            if wait_s <= 0:  # never wait, however quick the load: always the background
                raise FutureTimeout
            new = future.result(timeout=wait_s)
        except FutureTimeout:
            self.loading = path
            self._idle.clear()
            log.info("model_path %s: loading in the background, %s keeps running meanwhile",
                     path, running)
            threading.Thread(target=self._finish, daemon=True, name="model-swap",
                             args=(future, path, running, generation)).start()
            return ""
        except Exception as err:  # noqa: BLE001 - whatever is wrong with the file, say it
            self.rejected += 1
            log.warning("model_path %s rejected: %s: %s", path, type(err).__name__, err)
            return f"model_path rejected: {type(err).__name__}: {err}; still running {running}"
        self._install(new, generation)
        return ""

    def invalidate(self) -> None:
        """What was asked so far is no longer wanted (a cleanup): late loads are dropped."""
        with self._lock:
            self._generation += 1

    def wait_idle(self, timeout_s: float) -> bool:
        """Whether no background load is left within ``timeout_s``."""
        return self._idle.wait(timeout_s)

    @property
    def reverting(self) -> bool:
        """Whether this thread is setting the path back (the change must not load)."""
        return self._reverting == threading.get_ident()

    @contextlib.contextmanager
    def revert(self) -> Iterator[None]:
        """Mark this thread as reverting for the duration of the block."""
        self._reverting = threading.get_ident()
        try:
            yield
        finally:
            self._reverting = None

    def _load_into(self, future: Future, path: str) -> None:
        try:
            future.set_result(self.load(path))
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(err)

    def _install(self, new: Any, generation: int) -> bool:
        with self._lock:  # a cleanup cannot slip between the check and the swap
            if generation != self._generation or not self.swap_in(new):
                log.info("a model loaded after a cleanup was dropped")
                return False
            self.swaps += 1
            return True

    def _finish(self, future: Future, path: str, running: str, generation: int) -> None:
        """Swap thread: swap the slow model in, or report the failure (never on the caller)."""
        try:
            error = future.exception()
            if error is None:
                self._install(future.result(), generation)
                return
            self.rejected += 1
            why = f"{type(error).__name__}: {error}"
            log.warning("model_path %s rejected after loading: %s", path, why)
            if generation == self._generation:  # else model_path belongs to the next configure
                self.on_failed(path, why, running)
        finally:
            self.loading = None
            self._idle.set()

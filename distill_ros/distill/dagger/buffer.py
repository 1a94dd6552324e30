"""The aggregate DAgger dataset: a replay buffer with a hard cap in transitions.

Arrays are preallocated once per observation group (the groups the student reads) plus the
teacher's labels (mean action, and std for Gaussian teachers) and the task index, so memory
is fixed from construction: it never grows with rounds. When full, `fifo` overwrites the
oldest transition and `reservoir` keeps a uniform sample of everything ever offered
(Vitter's algorithm R), drawn from the buffer's own seeded RNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill_ros.distill.dagger.config import BUFFER_MODES
from distill_ros.atomic import atomic_torch_save

GroupSpec = dict[str, tuple[tuple[int, ...], np.dtype]]  # name -> (shape per item, dtype)


class ReplayBuffer:
    """Capped storage of (student observation groups, teacher mean, teacher std, task)."""

    def __init__(self, capacity: int, groups: GroupSpec, act_dim: int, gaussian: bool,
                 mode: str = "fifo", seed: int = 0) -> None:
        if capacity <= 0:
            raise ValueError(f"dagger.buffer_size must be > 0, got {capacity}")
        if mode not in BUFFER_MODES:
            raise ValueError(f"dagger.buffer_mode must be one of {list(BUFFER_MODES)}, "
                             f"got {mode!r}")
        self.capacity, self.mode = int(capacity), mode
        self.obs = {name: np.zeros((capacity, *shape), dtype)
                    for name, (shape, dtype) in groups.items()}
        self.mean = np.zeros((capacity, act_dim), np.float32)
        self.std = np.ones((capacity, act_dim), np.float32) if gaussian else None
        self.task = np.zeros(capacity, np.int32)
        self.size = 0      # transitions held
        self.seen = 0      # transitions ever offered
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated arrays (fixed for the buffer's life)."""
        arrays = [*self.obs.values(), self.mean, self.task]
        return sum(a.nbytes for a in arrays) + (0 if self.std is None else self.std.nbytes)

    def _slots(self, n: int) -> np.ndarray:
        """Where the next `n` offered transitions go; -1 where reservoir sampling drops one."""
        offered = self.seen + np.arange(n)
        if self.mode == "fifo":
            return offered % self.capacity
        slots = offered.copy()
        full = offered >= self.capacity
        if full.any():
            # algorithm R: item number k (0-based) replaces a random slot with prob cap/(k+1)
            draws = np.floor(self.rng.random(int(full.sum())) * (offered[full] + 1))
            slots[full] = np.where(draws < self.capacity, draws, -1).astype(np.int64)
        return slots

    def add(self, obs: dict[str, np.ndarray], mean: np.ndarray, std: np.ndarray | None,
            task: np.ndarray) -> None:
        """Offer a batch of transitions (leading axis = batch)."""
        n = len(mean)
        if set(obs) != set(self.obs):
            raise ValueError(f"buffer groups are {sorted(self.obs)}, got {sorted(obs)}")
        if (std is None) != (self.std is None):
            raise ValueError("teacher std given to a buffer made without one, or missing "
                             "from a buffer made for Gaussian teachers")
        slots = self._slots(n)
        keep = slots >= 0
        # within one batch a slot may be chosen twice: numpy's last write wins, as in
        # sequential insertion
        where = slots[keep]
        for name, arr in obs.items():
            self.obs[name][where] = np.asarray(arr)[keep]
        self.mean[where] = np.asarray(mean)[keep]
        if std is not None:
            self.std[where] = np.asarray(std)[keep]
        self.task[where] = np.asarray(task)[keep]
        self.seen += n
        self.size = min(self.capacity, self.seen)

    def sample(self, batch_size: int) -> np.ndarray:
        """Indices of a uniform batch (with replacement) from the held transitions."""
        if self.size == 0:
            raise ValueError("the DAgger buffer is empty: collect before updating")
        return self.rng.integers(0, self.size, batch_size)

    def batch(self, idx: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray,
                                              np.ndarray | None]:
        """The observation groups, teacher means and stds at `idx`."""
        std = None if self.std is None else self.std[idx]
        return {k: v[idx] for k, v in self.obs.items()}, self.mean[idx], std

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The held transitions (as tensors), counters and RNG state.

        A full buffer's arrays are shared, not copied: torch writes tensor storage straight
        to the file, so a checkpoint costs no second copy of the buffer in memory.
        """
        n = self.size

        def held(a: np.ndarray):
            import torch

            return torch.from_numpy(a if n == self.capacity else a[:n].copy())
        state = {"capacity": self.capacity, "mode": self.mode, "size": n, "seen": self.seen,
                 "rng": self.rng.bit_generator.state, "mean": held(self.mean),
                 "task": held(self.task), "obs": {k: held(v) for k, v in self.obs.items()}}
        if self.std is not None:
            state["std"] = held(self.std)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`; refuses a buffer of another capacity, mode or layout."""
        if state["capacity"] != self.capacity or state["mode"] != self.mode:
            raise ValueError(f"saved buffer has capacity {state['capacity']} ({state['mode']}), "
                             f"this run's has {self.capacity} ({self.mode}); resume with the "
                             "same dagger.buffer_size and dagger.buffer_mode")
        if set(state["obs"]) != set(self.obs) or ("std" in state) != (self.std is not None):
            raise ValueError(f"saved buffer groups {sorted(state['obs'])} differ from this "
                             f"run's {sorted(self.obs)}")
        n = int(state["size"])
        for k, v in state["obs"].items():
            self.obs[k][:n] = np.asarray(v)
        self.mean[:n] = np.asarray(state["mean"])
        self.task[:n] = np.asarray(state["task"])
        if self.std is not None:
            self.std[:n] = np.asarray(state["std"])
        self.size, self.seen = n, int(state["seen"])
        self.rng.bit_generator.state = state["rng"]

    def save(self, path: str | Path) -> None:
        """Atomically write the buffer to one file (torch pickle of `state_dict`)."""
        atomic_torch_save(path, self.state_dict())

    def load(self, path: str | Path) -> None:
        """Restore from `save`."""
        import torch

        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))

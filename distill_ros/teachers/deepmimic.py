"""DeepMimic's humanoid experts, read from the TF1 checkpoints that ship with pybullet_data.

`pybullet_data/data/policies/humanoid3d/humanoid3d_<clip>.ckpt` holds a PPO agent trained by
pybullet's DeepMimic port. Its deterministic actor (the mean of the Gaussian policy) is
`a = a_norm^-1(W2 relu(W1 relu(W0 s_norm(s) + b0) + b1) + b2)` with 197 -> 1024 -> 512 -> 36
units (`fc_2layers_1024units`), where `s_norm(s) = (s - mean) / std` and
`a_norm^-1(y) = y * std + mean`. The critic and the other normalisers are not needed to act.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill_ros.spec import Spec
from distill_ros.teachers.tf_bundle import TensorBundle

CLIPS = ("walk", "jump", "spinkick", "backflip", "walk_COMenabled")
STATE_DIM = 197
ACTION_DIM = 36
_ACTOR = "agent/main/actor"
LAYERS = (f"{_ACTOR}/0/dense", f"{_ACTOR}/1/dense", f"{_ACTOR}/dense")
NORMS = ("agent/resource/s_norm", "agent/resource/a_norm")
SMALL_BATCH = 16  # up to this many states per call, the forward pass avoids BLAS
INDEX_SUFFIX = ".index"


def policies_dir() -> Path:
    """The folder of DeepMimic checkpoints inside the installed pybullet_data."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "policies" / "humanoid3d"


def checkpoint_prefix(clip: str) -> Path:
    """The checkpoint prefix of one shipped clip policy."""
    if clip not in CLIPS:
        raise ValueError(f"no shipped DeepMimic policy for clip {clip!r}; choose one of "
                         f"{', '.join(CLIPS)} or load your own checkpoint by path")
    return policies_dir() / f"humanoid3d_{clip}.ckpt"


class DeepMimicTeacher:
    """The deterministic DeepMimic actor: 197-value state in, 36 PD targets out."""

    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]], s_mean: np.ndarray,
                 s_std: np.ndarray, a_mean: np.ndarray, a_std: np.ndarray,
                 name: str = "deepmimic") -> None:
        if weights[0][0].shape[0] != s_mean.shape[0] or weights[-1][0].shape[1] != a_std.shape[0]:
            raise ValueError(f"{name}: actor layers {[w.shape for w, _ in weights]} do not fit "
                             f"state size {s_mean.shape[0]} and action size {a_std.shape[0]}")
        self.weights = [(w.astype(np.float32), b.astype(np.float32)) for w, b in weights]
        self.s_mean, self.s_std = s_mean.astype(np.float32), s_std.astype(np.float32)
        self.a_mean, self.a_std = a_mean.astype(np.float32), a_std.astype(np.float32)
        self.name = name

    @classmethod
    def load(cls, prefix: str | Path) -> DeepMimicTeacher:
        """Load the actor from a checkpoint prefix (`.../humanoid3d_walk.ckpt`)."""
        bundle = TensorBundle(prefix)
        missing = [n for layer in LAYERS for n in (f"{layer}/kernel", f"{layer}/bias")
                   if n not in bundle.entries]
        missing += [f"{norm}/{s}" for norm in NORMS for s in ("mean", "std")
                    if f"{norm}/{s}" not in bundle.entries]
        if missing:
            raise ValueError(f"checkpoint {prefix} is not a DeepMimic PPO agent: it lacks "
                             f"{', '.join(missing)}")
        weights = [(bundle.read(f"{layer}/kernel"), bundle.read(f"{layer}/bias"))
                   for layer in LAYERS]
        s_norm, a_norm = NORMS
        return cls(weights, bundle.read(f"{s_norm}/mean"), bundle.read(f"{s_norm}/std"),
                   bundle.read(f"{a_norm}/mean"), bundle.read(f"{a_norm}/std"),
                   name=Path(prefix).name)

    @classmethod
    def from_index_file(cls, path: str | Path, obs_spec: Spec, act_spec: Spec
                        ) -> DeepMimicTeacher:
        """A teacher file named by its `.index` (`teachers.sources`), checked against layouts."""
        path = Path(path)
        if path.suffix != INDEX_SUFFIX:
            raise ValueError(f"teacher file {path}: a DeepMimic checkpoint is named by its "
                             f"{INDEX_SUFFIX} file, e.g. humanoid3d_walk.ckpt{INDEX_SUFFIX}")
        teacher = cls.load(path.with_suffix(""))
        if (teacher.obs_dim, teacher.act_dim) != (obs_spec.dim, act_spec.dim):
            raise ValueError(f"teacher file {path} maps {teacher.obs_dim} state values to "
                             f"{teacher.act_dim} actions, the task has {obs_spec.dim} and "
                             f"{act_spec.dim}; use a checkpoint of this character")
        return teacher

    @classmethod
    def for_clip(cls, clip: str) -> DeepMimicTeacher:
        """The shipped policy of one clip (`walk`, `jump`, `spinkick`, `backflip`, ...)."""
        return cls.load(checkpoint_prefix(clip))

    @property
    def obs_dim(self) -> int:
        """State size (197)."""
        return self.s_mean.shape[0]

    @property
    def act_dim(self) -> int:
        """Action size (36)."""
        return self.a_mean.shape[0]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, 197) or (197,) DeepMimic state -> (B, 36) or (36,) PD targets (axis-angle)."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"{self.name} takes states of {self.obs_dim} values, got shape "
                             f"{obs.shape}")
        h = (np.atleast_2d(obs) - self.s_mean) / self.s_std
        # A few states: numpy's own loop, not BLAS, whose threads on a busy machine made one
        # call in ten take 50 ms instead of 0.05 ms. Batches: torch's BLAS, whose threads are
        # torch.set_num_threads' (the pipeline sets 1): numpy's OpenBLAS, threaded, took
        # 400 ms for 256 states on a shared machine, against 35 ms on one thread.
        if h.shape[0] <= SMALL_BATCH:
            for i, (w, b) in enumerate(self.weights):
                h = np.einsum("bi,io->bo", h, w, optimize=False) + b
                if i < len(self.weights) - 1:
                    h = np.maximum(h, 0.0)
        else:
            h = self._batched(h)
        out = h * self.a_std + self.a_mean
        return out[0] if obs.ndim == 1 else out

    def _batched(self, h: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(h, np.float32))
            for i, (w, b) in enumerate(self.weights):
                x = torch.addmm(torch.from_numpy(b), x, torch.from_numpy(w))
                if i < len(self.weights) - 1:
                    x = torch.relu(x)
            return x.numpy()

"""Teachers: where the experts come from.

Every teacher, whatever its source, is a `Teacher`: physical observation in, physical
action out, deterministic. A new source is one loader added to `LOADERS` by file suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from distill_ros.spec import Spec


class Teacher(Protocol):
    """An expert for one task."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, obs_dim) physical observation -> (B, act_dim) physical action."""


def _load_sb3(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.sb3 import SB3Teacher

    return SB3Teacher.load(path, obs_spec, act_spec)


def _load_onnx(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.files import OnnxTeacher

    return OnnxTeacher(path, obs_spec, act_spec)


def _load_torchscript(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.files import TorchScriptTeacher

    return TorchScriptTeacher(path, obs_spec, act_spec)


LOADERS: dict[str, Callable[[Path, Spec, Spec], Teacher]] = {
    ".zip": _load_sb3,
    ".onnx": _load_onnx,
    ".pt": _load_torchscript,
    ".ts": _load_torchscript,
}


def load_teacher(path: str | Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    """Load a teacher file, chosen by suffix, and check it fits the task's layouts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teacher file {path} does not exist; fix teachers.sources in "
                                "the config or run `distill-ros teachers` to train one")
    if path.suffix not in LOADERS:
        raise ValueError(f"teacher file {path}: unsupported type {path.suffix!r}; use one of "
                         f"{sorted(LOADERS)} (SB3 .zip, ONNX, TorchScript)")
    return LOADERS[path.suffix](path, obs_spec, act_spec)


def check_obs_dim(path: Path, got: int | None, obs_spec: Spec) -> None:
    """Refuse a teacher whose input size is not the task's observation size."""
    if got is not None and got != obs_spec.dim:
        raise ValueError(
            f"teacher file {path} expects observations of {got} elements, but the task "
            f"provides {obs_spec.dim} ({', '.join(obs_spec.names)}); train or export the "
            "teacher for this task's observation layout")

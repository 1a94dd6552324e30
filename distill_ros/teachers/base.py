"""What every teacher is, whatever its source: physical observation in, physical action out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from distill_ros.spec import Spec


class Teacher(Protocol):
    """An expert for one task."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, obs_dim) physical observation -> (B, act_dim) physical action."""


def check_obs_dim(path: Path, got: int | None, obs_spec: Spec) -> None:
    """Refuse a teacher whose input size is not the task's observation size."""
    if got is not None and got != obs_spec.dim:
        raise ValueError(
            f"teacher file {path} expects observations of {got} elements, but the task "
            f"provides {obs_spec.dim} ({', '.join(obs_spec.names)}); train or export the "
            "teacher for this task's observation layout")

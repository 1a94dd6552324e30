"""Settings of the `distill` section: which algorithm, and the supervised student training.

Every algorithm that trains a behaviour-cloning student (offline's student, onestep's BC
baseline) reads these; an algorithm's own settings live in its own section.
"""

from __future__ import annotations

from dataclasses import dataclass

from distill_ros.checks import in_range, positive
from distill_ros.distill import ALGORITHMS
from distill_ros.plugins import is_import_path


@dataclass
class DistillConfig:
    """Training the student from teacher data."""

    algorithm: str = "offline"  # a name in distill.ALGORITHMS or my_pkg.my_module:NAME
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1   # share of the steps held out to pick the best epoch
    nproc: int = 1      # torch.distributed ranks for the offline student (--nproc); not hashed

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS and not is_import_path(self.algorithm):
            raise ValueError(f"distill.algorithm must be one of {list(ALGORITHMS)} or "
                             f"my_pkg.my_module:NAME, got {self.algorithm!r}")
        positive("distill", epochs=self.epochs, batch_size=self.batch_size,
                 learning_rate=self.learning_rate, nproc=self.nproc)
        in_range("distill.weight_decay", self.weight_decay, 0.0, 1.0)
        in_range("distill.val_fraction", self.val_fraction, 0.0, 0.5, low_open=True,
                 high_open=True)

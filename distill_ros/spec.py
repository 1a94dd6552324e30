"""Named observation and action layouts that travel with datasets, checkpoints and ONNX files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Spec:
    """Layout of one vector: a name per element and, for actions, the physical limits.

    Names make layouts checkable: a dataset, a checkpoint and an ONNX file built for
    another layout are refused by name, not discovered later by a wrong grasp.
    """

    names: tuple[str, ...]
    low: tuple[float, ...] = field(default=())
    high: tuple[float, ...] = field(default=())
    units: str = ""

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(set(self.names)) != n:
            raise ValueError(f"spec names must be unique, got {list(self.names)}")
        for label, seq in (("low", self.low), ("high", self.high)):
            if seq and len(seq) != n:
                raise ValueError(f"spec {label} has {len(seq)} values for {n} names")
        if self.low and self.high and any(lo > hi for lo, hi in zip(self.low, self.high)):
            raise ValueError(f"spec low must be <= high, got low={self.low} high={self.high}")

    @property
    def dim(self) -> int:
        """Number of elements."""
        return len(self.names)

    def to_json(self) -> str:
        """Serialise for metadata (ONNX, checkpoints, dataset shards)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        """Inverse of `to_json`."""
        d = json.loads(text)
        return cls(tuple(d["names"]), tuple(d["low"]), tuple(d["high"]), d.get("units", ""))

    def check_same(self, other: "Spec", what: str, where: str) -> None:
        """Raise a ValueError naming `where` if `other` is a different layout."""
        if tuple(self.names) != tuple(other.names):
            raise ValueError(
                f"{where}: {what} layout differs from the task's: expected {self.dim} "
                f"elements {list(self.names)}, got {other.dim} {list(other.names)}. "
                "Rebuild it for this task or pick the task it was made for."
            )

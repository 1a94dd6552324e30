"""Tasks are arm-pose ranges: a grid over shoulder flexion and elbow flexion.

Each cell of the grid is one task (one teacher); shoulder abduction is drawn from one range
for every task. Two cells are held out: the centre cell (between training ranges) and one
corner, so a student can be checked on poses no teacher trained on. Three more held-out
ranges lie beyond the grid (`BEYOND_RANGES`: the arm raised further, the elbow bent further,
both), where one range's teacher no longer carries over: on the grid's own held-out cells
every teacher dresses nearly every episode (measured in docs/dressing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLEXION_BINS = ((40.0, 60.0), (60.0, 80.0), (80.0, 100.0))   # degrees, shoulder flexion
ELBOW_BINS = ((0.0, 20.0), (20.0, 40.0), (40.0, 60.0))       # degrees, elbow flexion
ABDUCTION = (0.0, 20.0)                                      # degrees, every task


@dataclass(frozen=True)
class PoseRange:
    """One task: ranges (degrees) of the three joint angles, sampled uniformly."""

    name: str
    flexion: tuple[float, float]
    abduction: tuple[float, float]
    elbow: tuple[float, float]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Joint angles (rad): flexion, abduction, elbow flexion."""
        lo, hi = np.array([self.flexion, self.abduction, self.elbow]).T
        return np.radians(rng.uniform(lo, hi))

    def centre(self) -> np.ndarray:
        """The middle of the range (rad)."""
        return np.radians(np.mean([self.flexion, self.abduction, self.elbow], axis=1))


POSE_RANGES = {
    f"f{i}e{j}": PoseRange(f"f{i}e{j}", fl, ABDUCTION, el)
    for i, fl in enumerate(FLEXION_BINS) for j, el in enumerate(ELBOW_BINS)
}
GRID_HELD_OUT = ("f1e1", "f2e2")   # the centre cell and a corner
TRAIN_RANGES = tuple(n for n in POSE_RANGES if n not in GRID_HELD_OUT)
BEYOND_FLEXION = (100.0, 120.0)   # degrees: past the grid's last flexion bin
BEYOND_ELBOW = (60.0, 80.0)       # degrees: past the grid's last elbow bin
BEYOND_RANGES = {
    "f3e1": PoseRange("f3e1", BEYOND_FLEXION, ABDUCTION, ELBOW_BINS[1]),
    "f1e3": PoseRange("f1e3", FLEXION_BINS[1], ABDUCTION, BEYOND_ELBOW),
    "f3e3": PoseRange("f3e3", BEYOND_FLEXION, ABDUCTION, BEYOND_ELBOW),
}
POSE_RANGES.update(BEYOND_RANGES)
HELD_OUT_RANGES = (*GRID_HELD_OUT, *BEYOND_RANGES)


def get_range(name: str) -> PoseRange:
    """A pose range by name, with the valid names in the error."""
    if name not in POSE_RANGES:
        raise ValueError(f"unknown dressing pose range {name!r}; valid choices: "
                         f"{list(POSE_RANGES)}")
    return POSE_RANGES[name]

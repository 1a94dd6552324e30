"""Settings of the `student` section: the one student network."""

from __future__ import annotations

from dataclasses import dataclass, field

from distill_ros.checks import choice, positive, positive_entries
from distill_ros.students import ARCHITECTURES


@dataclass
class StudentConfig:
    """The one student network."""

    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # MLP layer widths
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    # a vector group whose first 3 values are the points' origin (e.g. proprio: the gripper's
    # position); empty: points as observed (world frame)
    points_origin: str = ""
    # a pose group (x, y, z, quaternion x, y, z, w; e.g. proprio: the gripper's pose): the
    # points read in its frame and the action's vectors (the family's) turned out of it;
    # empty: none. Set at most one of points_origin and points_frame.
    points_frame: str = ""

    def __post_init__(self) -> None:
        choice("student.arch", self.arch, ARCHITECTURES)
        positive_entries("student.hidden", self.hidden)
        positive("student", d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers)
        if self.d_model % self.n_heads:
            raise ValueError(f"student.d_model must be a multiple of student.n_heads "
                             f"({self.n_heads}), got {self.d_model}")
        check_one_frame(self.points_origin, self.points_frame)


def check_one_frame(points_origin: str, points_frame: str) -> None:
    """At most one of the two: a frame has its own origin."""
    if points_origin and points_frame:
        raise ValueError(f"set one of student.points_origin ({points_origin!r}) and "
                         f"student.points_frame ({points_frame!r}): a frame has its own "
                         "origin")

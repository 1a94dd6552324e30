"""Which observation groups an env returns, and what the teacher and the student read of them.

One record serves DAgger's rollouts and the eval stage, so a student is evaluated on exactly
the inputs it was trained on. An algorithm whose config section names `teacher_groups` and
`student_groups` (as `dagger` does) gets grouped envs; any other reads the family's flat
observation whole, on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from distill_ros.distill.dagger.envs import flatten, select, to_groups


@dataclass(frozen=True)
class ObservationViews:
    """The env's groups (empty: the flat observation) and each side's groups (empty: all).

    The teacher reads its groups flattened in order, as one vector; the student reads its
    groups' inputs by name (a command ``c`` brings ``c_mask``).
    """

    teacher_groups: tuple[str, ...] = ()
    student_groups: tuple[str, ...] = ()

    @classmethod
    def of(cls, cfg) -> "ObservationViews":
        """The views of a pipeline config's algorithm (flat unless its section names groups)."""
        from distill_ros.distill import get_algorithm

        section = cfg.sections.get(get_algorithm(cfg.distill.algorithm).name)
        return cls(tuple(getattr(section, "teacher_groups", ()) or ()),
                   tuple(getattr(section, "student_groups", ()) or ()))

    @property
    def env_groups(self) -> tuple[str, ...]:
        """The groups to ask the family for: the teacher's then the student's, each once."""
        return tuple(dict.fromkeys([*self.teacher_groups, *self.student_groups]))

    @property
    def grouped(self) -> bool:
        """Whether the env returns groups (a dict) rather than the flat observation."""
        return bool(self.env_groups)

    def teacher_input(self, obs: object) -> np.ndarray:
        """A batch of env observations -> the teacher's (B, D) input."""
        return flatten(to_groups(obs), self.teacher_groups) if self.grouped else obs

    def student_input(self, obs: object) -> object:
        """A batch of env observations -> the student's inputs by name (flat: unchanged)."""
        return select(to_groups(obs), self.student_groups) if self.grouped else obs

    def teacher_policy(self, act: Callable) -> Callable:
        """`act` (teacher input -> action) as a policy over env observations."""
        return act if not self.grouped else (lambda obs: act(self.teacher_input(obs)))

    def student_policy(self, act: Callable, inputs: Sequence[str]) -> Callable:
        """`act` (student inputs -> action) over env observations; `inputs` must be its names.

        A student exported with other inputs than these views give raises a ValueError that
        names the config keys, at its first step.
        """
        if not self.grouped:
            return act

        def policy(obs: object) -> np.ndarray:
            feed = self.student_input(obs)
            if list(feed) != list(inputs):
                raise ValueError(f"the student reads inputs {list(inputs)} but the config's "
                                 f"student_groups {list(self.student_groups)} (teacher_groups "
                                 f"{list(self.teacher_groups)}) give {list(feed)}; evaluate "
                                 "with the groups the run was trained with")
            return act(feed)
        return policy

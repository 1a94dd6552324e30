"""Task-family registry: a family is a set of named tasks sharing one observation/action layout.

A new family is one module that calls `register_family`; nothing else is edited.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym

from distill_ros.spec import Spec


@dataclass(frozen=True)
class TaskFamily:
    """A family of tasks (e.g. one per object) that one student must serve."""

    name: str
    tasks: tuple[str, ...]
    make: Callable[..., gym.Env]
    obs_spec: Spec
    act_spec: Spec
    control_rate_hz: float
    max_episode_steps: int
    #: checks and registers a config's own task: (name, spec, config key); None: no such tasks
    add_task: Callable[[str, object, str], None] | None = None


_FAMILIES: dict[str, TaskFamily] = {}


def register_family(family: TaskFamily) -> None:
    """Add a task family; its name must be new."""
    if family.name in _FAMILIES:
        raise ValueError(f"task family {family.name!r} is already registered")
    _FAMILIES[family.name] = family


def get_family(name: str) -> TaskFamily:
    """Look a family up by name, with the valid choices in the error."""
    _load_builtin()
    if name not in _FAMILIES:
        raise ValueError(f"unknown task family {name!r}; choose one of {sorted(_FAMILIES)}")
    return _FAMILIES[name]


def add_user_tasks(family: str, specs: dict[str, object], field: str) -> TaskFamily:
    """Make a config's own tasks (`field`, e.g. grasp objects) tasks of `family`."""
    fam = get_family(family)
    if not specs:
        return fam
    if fam.add_task is None:
        raise ValueError(f"{field}: family {family!r} takes no tasks of yours; remove {field}")
    for name, spec in specs.items():
        fam.add_task(name, spec, f"{field}.{name}")
    fam = dataclasses.replace(fam, tasks=tuple(dict.fromkeys([*fam.tasks, *specs])))
    _FAMILIES[family] = fam
    return fam


def check_tasks(family: TaskFamily, tasks: list[str], field: str) -> None:
    """Raise a ValueError naming `field` for any task the family does not have."""
    unknown = [t for t in tasks if t not in family.tasks]
    if unknown:
        raise ValueError(
            f"{field}: unknown task(s) {unknown} for family {family.name!r}; "
            f"valid choices: {list(family.tasks)}"
        )


def make_env(family: str, task: str, **kwargs) -> gym.Env:
    """Build one task's environment."""
    fam = get_family(family)
    check_tasks(fam, [task], "task")
    return fam.make(task, **kwargs)


def _load_builtin() -> None:
    # Importing a family module registers it; kept lazy so `import distill_ros` stays fast.
    from distill_ros.tasks import grasp  # noqa: F401

"""Task families, found by name: a family is a set of named tasks sharing one layout.

Built-in families are the entries of `FAMILIES` (name -> `module:FAMILY`), imported only
when asked for. A user's family needs no edit here: the config names it by import path,
`family: my_pkg.my_module:FAMILY`, where `FAMILY` is a `TaskFamily`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import gymnasium as gym

from distill_ros.plugins import is_import_path, load_object
from distill_ros.spec import Spec

FAMILIES: dict[str, str] = {  # the built-in families, by name
    "grasp": "distill_ros.tasks.grasp:FAMILY",
    "toy": "distill_ros.tasks.toy:FAMILY",
    "dressing": "distill_ros.tasks.dressing:FAMILY",
    "detour": "distill_ros.tasks.detour_family:FAMILY",
    "humanoid": "distill_ros.tasks.humanoid.family:FAMILY",
}


#: families as a config extended them with its own tasks (`objects:`), by config name
_WITH_USER_TASKS: dict[str, "TaskFamily"] = {}


@dataclass(frozen=True)
class TaskFamily:
    """A family of tasks (e.g. one per object) that one student must serve.

    `make(task, **kwargs)` builds a gymnasium env. `make_scene(task, seed)`, when given,
    builds the scene the `sim_robot` node drives (the `tasks.scene.Scene` protocol;
    `tasks.grasp_scene.GraspScene` is an example); a family without one runs in the
    pipeline only.
    """

    name: str
    tasks: tuple[str, ...]
    make: Callable[..., gym.Env]
    obs_spec: Spec
    act_spec: Spec
    control_rate_hz: float
    max_episode_steps: int
    make_scene: Optional[Callable[[str, int], Any]] = None
    #: checks and registers a config's own task: (name, spec, config key); None: no such tasks
    add_task: Callable[[str, object, str], None] | None = None
    #: built-in demonstrators by name (name -> nn.Module factory) for `onestep.demonstrators`
    scripted_experts: Optional[dict[str, Callable[[], Any]]] = None
    #: task -> a teacher file that ships with the family (None: none; train one or bring one)
    shipped_teacher: Optional[Callable[[str], Optional[Path]]] = None
    #: (run, cfg) -> summary: the family's own eval stage, replacing the success-rate one
    evaluate: Optional[Callable[[Any, Any], dict]] = None
    #: names of the channels of the env's observation groups (a `spec.ObsSpec`), which a
    #: student trained on them keeps in its ONNX file; None: `<group>_<i>`
    obs_groups: Optional[Any] = None
    #: (task, mode, future_steps) -> a ROS-free command player (`labels`, `at(t)` ->
    #: values and mask, `set_mode`, `set_clip`, `close`), e.g. a humanoid clip as HOVER's
    #: masked command, which the `motion_command` node publishes; None: no such commands
    command_source: Optional[Callable[..., Any]] = None
    #: (family name, tasks, student (a `StudentPolicy`), seed, episodes) -> a score, higher
    #: is better: how the family judges a student between DAgger rounds (`dagger.keep: best`);
    #: None: DAgger's own evaluation return
    validate: Optional[Callable[..., float]] = None
    #: (teacher, teacher_groups) -> the teacher that reads those groups flattened (e.g. the
    #: humanoid's expert steered by the `heading` group); None: the teacher as loaded
    teacher_for_groups: Optional[Callable[[Any, tuple[str, ...]], Any]] = None
    #: index triples of the action that are world-frame 3-vectors (a twist's linear and
    #: angular parts), which a student with `student.points_frame` outputs in that frame and
    #: turns back; () when none are; None: not declared (points_frame refused)
    act_frame_vectors: Optional[tuple[tuple[int, int, int], ...]] = None

    def teacher_reading(self, teacher: Any, groups: Sequence[str]) -> Any:
        """`teacher` as it reads `groups` (the `teacher_for_groups` hook), else as loaded."""
        if self.teacher_for_groups is None:
            return teacher
        return self.teacher_for_groups(teacher, tuple(groups))


def get_family(name: str, key: str = "family") -> TaskFamily:
    """A built-in family by name, or a user's `module:FAMILY`; errors name `key` and the fix."""
    if name in _WITH_USER_TASKS:
        return _WITH_USER_TASKS[name]
    if name in FAMILIES:
        return load_object(FAMILIES[name], key, "task family")
    if not is_import_path(name):
        raise ValueError(f"unknown task family {name!r}; choose one of {sorted(FAMILIES)} "
                         "or name your own as my_pkg.my_module:FAMILY")
    family = load_object(name, key, "task family")
    if not isinstance(family, TaskFamily):
        raise ValueError(f"{key}: {name!r} is a {type(family).__name__}, not a "
                         "distill_ros.tasks.base.TaskFamily")
    return family


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
    _WITH_USER_TASKS[family] = fam
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

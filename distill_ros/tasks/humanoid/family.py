"""The `humanoid` task family: one task per DeepMimic clip shipped with pybullet_data.

`humanoid` is the multi-mode family: every episode draws a command mode (all of
`commands.MODES`, `full` weighted up) kept whole or with random sparsity, switched mid-episode
now and then, as HOVER trains its generalist. A **specialist** family shows one mode only,
always: name it in a config as
`family: distill_ros.tasks.humanoid.family:specialist_<mode>` (e.g. `specialist_head_hands`).
The families differ only in the masks their envs draw; their tasks, layouts and teachers are
the same. Without observation groups an env returns DeepMimic's flat 197-value state.
"""

from __future__ import annotations

import functools
from pathlib import Path

from distill_ros.spec import Group, ObsSpec, Spec
from distill_ros.tasks.base import TaskFamily
from distill_ros.tasks.humanoid.commands import CommandSpace, EVAL_MODES, MODES
from distill_ros.tasks.humanoid.motion import clip_names
from distill_ros.tasks.humanoid.skeleton import (ACTION_HIGH, ACTION_LOW, action_names,
                                                 state_names)

CONTROL_HZ = 30
EPISODE_SECONDS = 20.0  # as pybullet's DeepMimic env
TRAIN_SPARSITY = 0.1    # chance that each item of the drawn mode is dropped
TRAIN_SWITCH_PROB = 1.0 / 150  # per step: a fresh draw about every 5 s
# Evaluation pins each mode whole; with sparsity alone a draw of `full` keeps all of its 21
# items 11% of the time (0.9 ** 21). So half the draws keep their mode whole, and `full`,
# the command the student must track best, is drawn 3 times as often as each other mode.
TRAIN_WHOLE_PROB = 0.5
TRAIN_MODE_WEIGHTS = {"full": 3.0}  # every other mode: 1
SPECIALIST_PREFIX = "specialist_"

OBS_SPEC = Spec(names=tuple(state_names()),
                units="DeepMimic state: phase; m, quaternion (w, x, y, z), m/s, rad/s, "
                      "in the root's heading frame")
ACT_SPEC = Spec(names=tuple(action_names()), low=ACTION_LOW, high=ACTION_HIGH,
                units="PD targets: rad about a unit axis (spherical joints), rad (revolute)")
# The names of HoverEnv's groups (default command: one frame ahead), kept in a student's ONNX
# file: sim_robot's humanoid scene publishes the state by these names.
OBS_GROUPS = ObsSpec((Group("state", "vector", OBS_SPEC),
                      Group("proprio", "vector", Spec(OBS_SPEC.names[1:], units=OBS_SPEC.units)),
                      Group("command", "command", Spec(tuple(CommandSpace().names()))),
                      Group("heading", "vector", Spec(("heading_error",),
                                                      units="rad, low-passed"))))


def make_scene(task: str, seed: int = 0):
    """The humanoid scene `sim_robot` drives (`scene.HumanoidScene`): no episode end, falls."""
    import math

    from distill_ros.tasks.humanoid.env import HumanoidImitationEnv
    from distill_ros.tasks.humanoid.scene import HumanoidScene

    env = HumanoidImitationEnv(task, control_hz=CONTROL_HZ, max_seconds=math.inf)
    return HumanoidScene(env, OBS_SPEC, ACT_SPEC, seed)


def command_source(clip: str, mode: str, future_steps=(1,)):
    """A clip played as the masked command (`clip_command.ClipCommand`) for motion_command."""
    from distill_ros.tasks.humanoid.clip_command import ClipCommand

    return ClipCommand(clip, mode, future_steps, float(CONTROL_HZ))


def _make(task: str, modes: tuple[str, ...] = tuple(MODES), sparsity: float = TRAIN_SPARSITY,
          switch_prob: float = TRAIN_SWITCH_PROB, groups: tuple[str, ...] = (),
          mode_weights: dict[str, float] | None = None, whole_prob: float = 0.0, **kwargs):
    kwargs.setdefault("control_hz", CONTROL_HZ)
    kwargs.setdefault("max_seconds", EPISODE_SECONDS)
    if not groups:
        from distill_ros.tasks.humanoid.env import HumanoidImitationEnv

        return HumanoidImitationEnv(task, **kwargs)
    from distill_ros.tasks.humanoid.hover import HoverEnv

    return HoverEnv(task, groups=groups, modes=modes, sparsity=sparsity,
                    switch_prob=switch_prob, mode_weights=mode_weights, whole_prob=whole_prob,
                    **kwargs)


def shipped_teacher(task: str) -> Path | None:
    """The DeepMimic checkpoint that ships for clip `task` (its `.index` file), if any."""
    from distill_ros.teachers.deepmimic import CLIPS, INDEX_SUFFIX, checkpoint_prefix

    if task not in CLIPS:
        return None
    prefix = checkpoint_prefix(task)
    return prefix.with_name(prefix.name + INDEX_SUFFIX)


def _evaluate(run, cfg, modes: tuple[str, ...]) -> dict:
    from distill_ros.tasks.humanoid.evaluate import evaluate_run

    return evaluate_run(run, cfg, modes)


def _validate(family: str, tasks, student, seed: int, episodes: int, mode: str) -> float:
    from distill_ros.tasks.humanoid.evaluate import validation_score

    return validation_score(family, tasks, student, seed, episodes, mode)


def _teacher_for_groups(teacher, groups: tuple[str, ...]):
    from distill_ros.tasks.humanoid.steering import teacher_for_groups

    return teacher_for_groups(teacher, groups)


def humanoid_family(name: str, modes: tuple[str, ...] = tuple(MODES),
                    sparsity: float = TRAIN_SPARSITY, switch_prob: float = TRAIN_SWITCH_PROB,
                    eval_modes: tuple[str, ...] = EVAL_MODES,
                    mode_weights: dict[str, float] | None = TRAIN_MODE_WEIGHTS,
                    whole_prob: float = TRAIN_WHOLE_PROB) -> TaskFamily:
    """A humanoid family whose envs draw command masks from `modes` (see `CommandSampler`).

    Its eval stage measures the student on each of `eval_modes`.
    """
    return TaskFamily(
        name=name,
        tasks=tuple(clip_names()),
        make=functools.partial(_make, modes=tuple(modes), sparsity=sparsity,
                               switch_prob=switch_prob, mode_weights=mode_weights,
                               whole_prob=whole_prob),
        obs_spec=OBS_SPEC,
        act_spec=ACT_SPEC,
        control_rate_hz=float(CONTROL_HZ),
        max_episode_steps=int(EPISODE_SECONDS * CONTROL_HZ),
        shipped_teacher=shipped_teacher,
        evaluate=functools.partial(_evaluate, modes=tuple(eval_modes)),
        make_scene=make_scene,
        obs_groups=OBS_GROUPS,
        command_source=command_source,
        validate=functools.partial(_validate, mode=eval_modes[0]),
        teacher_for_groups=_teacher_for_groups,
    )


FAMILY = humanoid_family("humanoid")


def __getattr__(name: str) -> TaskFamily:
    """`specialist_<mode>`: the family that always shows `<mode>`, whole (no sparsity)."""
    mode = name[len(SPECIALIST_PREFIX):]
    if name.startswith(SPECIALIST_PREFIX) and mode in MODES:
        return humanoid_family(f"humanoid_{name}", modes=(mode,), sparsity=0.0,
                               switch_prob=0.0, eval_modes=(mode,), mode_weights=None,
                               whole_prob=0.0)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (specialist "
                         f"families: {', '.join(SPECIALIST_PREFIX + m for m in MODES)})")

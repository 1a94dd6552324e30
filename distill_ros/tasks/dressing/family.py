"""The dressing family's record: tasks, named layouts and observation groups.

Tasks: every pose range (`poses.POSE_RANGES`, training and held out) with garments drawn from
the training garments, plus every range (training or held out) with each held-out garment fixed
(``f0e1@gown_long``). Teachers read the privileged ``state`` group; the student reads
``points`` (the preprocessed, labelled camera cloud) and ``proprio``.
"""

from __future__ import annotations

from distill_ros.runtime.pointcloud import group_preprocess
from distill_ros.spec import Group, ObsSpec, Spec
from distill_ros.tasks.base import TaskFamily
from distill_ros.tasks.dressing.arm import JOINTS
from distill_ros.tasks.dressing.camera import CLOUD
from distill_ros.tasks.dressing.env import (
    CONTROL_RATE_HZ, EPISODE_STEPS, MAX_SPEED, MAX_TURN, STATE_DIM, DressingEnv)
from distill_ros.tasks.dressing.garments import HELD_OUT_GARMENTS
from distill_ros.tasks.dressing.poses import HELD_OUT_RANGES, TRAIN_RANGES

_XYZ = ("x", "y", "z")
PROPRIO_NAMES = (*(f"gripper_{a}" for a in _XYZ), *(f"gripper_q{a}" for a in (*_XYZ, "w")))
OBS_SPEC = Spec(
    names=(*JOINTS,
           *(f"{p}_{a}" for p in ("hand_tip", "wrist", "elbow", "shoulder") for a in _XYZ),
           *PROPRIO_NAMES,
           *(f"{k}_{a}" for k in ("opening", "sleeve_middle", "cuff") for a in _XYZ),
           "dressed_ratio"),
    units="rad (joints), m (world frame), quaternion x y z w, ratio 0-1",
)
ACT_SPEC = Spec(
    names=("ee_vx", "ee_vy", "ee_vz", "ee_wx", "ee_wy", "ee_wz"),
    low=(-MAX_SPEED,) * 3 + (-MAX_TURN,) * 3, high=(MAX_SPEED,) * 3 + (MAX_TURN,) * 3,
    units="m/s and rad/s (world frame)",
)
assert OBS_SPEC.dim == STATE_DIM, "the state layout and its names disagree"

#: every range, alone (garments drawn from training's) or with a held-out garment: the garment
#: is tried on training poses and on held-out ones (both held out at once)
TASKS = (*TRAIN_RANGES, *HELD_OUT_RANGES,
         *(f"{r}@{g.name}" for g in HELD_OUT_GARMENTS for r in (*TRAIN_RANGES, *HELD_OUT_RANGES)))


def obs_groups(n_points: int = CLOUD.n_points) -> ObsSpec:
    """The env's groups: ``state`` (teachers), ``proprio`` and ``points`` (the student)."""
    return ObsSpec((
        Group("state", "vector", OBS_SPEC),
        Group("proprio", "vector", Spec(PROPRIO_NAMES, units="m, quaternion (world frame)")),
        Group("points", "points", Spec(("x", "y", "z", "label"),
                                       units="m (world frame); label 0 arm, 1 garment"),
              length=n_points, preprocess=group_preprocess(CLOUD)),
    ))


def make_scene(task: str, seed: int = 0):
    """The dressing scene `sim_robot` drives (`scene.DressingScene`)."""
    from distill_ros.tasks.dressing.scene import DressingScene

    env = DressingEnv(task, max_episode_steps=2**31)  # a robot has no episode end
    return DressingScene(env, OBS_SPEC, ACT_SPEC, seed)


def _scripted_expert():
    """The scripted dresser as a module (imports torch only when asked for)."""
    from distill_ros.tasks.dressing.scripted import DressingExpert

    return DressingExpert()


def _evaluate(run, cfg) -> dict:
    """Dressing's eval stage: final dressed ratios (`evaluate.evaluate_dressing`)."""
    from distill_ros.tasks.dressing.evaluate import evaluate_dressing

    return evaluate_dressing(run, cfg)


FAMILY = TaskFamily(
    name="dressing",
    tasks=TASKS,
    make=lambda task, **kw: DressingEnv(task, **kw),
    obs_spec=OBS_SPEC,
    act_spec=ACT_SPEC,
    control_rate_hz=CONTROL_RATE_HZ,
    max_episode_steps=EPISODE_STEPS,
    scripted_experts={"dressing_expert": _scripted_expert},
    evaluate=_evaluate,
    make_scene=make_scene,
    obs_groups=obs_groups(),
    act_frame_vectors=((0, 1, 2), (3, 4, 5)),   # the gripper's twist, world frame
)

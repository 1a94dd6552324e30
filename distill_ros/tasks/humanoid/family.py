"""The `humanoid` task family: one task per DeepMimic clip shipped with pybullet_data."""

from __future__ import annotations

from distill_ros.spec import Spec
from distill_ros.tasks.base import TaskFamily
from distill_ros.tasks.humanoid.motion import clip_names
from distill_ros.tasks.humanoid.scene import make_scene
from distill_ros.tasks.humanoid.skeleton import (ACTION_HIGH, ACTION_LOW, action_names,
                                                 state_names)

CONTROL_HZ = 30
EPISODE_SECONDS = 20.0  # as pybullet's DeepMimic env

OBS_SPEC = Spec(names=tuple(state_names()),
                units="DeepMimic state: phase; m, quaternion (w, x, y, z), m/s, rad/s, "
                      "in the root's heading frame")
ACT_SPEC = Spec(names=tuple(action_names()), low=ACTION_LOW, high=ACTION_HIGH,
                units="PD targets: rad about a unit axis (spherical joints), rad (revolute)")


def _make(task: str, **kwargs):
    from distill_ros.tasks.humanoid.env import HumanoidImitationEnv

    return HumanoidImitationEnv(task, control_hz=CONTROL_HZ, max_seconds=EPISODE_SECONDS,
                                **kwargs)


FAMILY = TaskFamily(
    name="humanoid",
    tasks=tuple(clip_names()),
    make=_make,
    obs_spec=OBS_SPEC,
    act_spec=ACT_SPEC,
    control_rate_hz=float(CONTROL_HZ),
    max_episode_steps=int(EPISODE_SECONDS * CONTROL_HZ),
    make_scene=make_scene,
)

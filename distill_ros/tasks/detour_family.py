"""The detour family as the pipeline and ``sim_robot`` see it: env, layouts, experts, scene.

Its own module so that the env (`tasks.detour`) and the scene (`tasks.detour_scene`) each
import only what they use, and neither imports the other's importer.
"""

from distill_ros.tasks.base import TaskFamily
from distill_ros.tasks.detour import (ACT_SPEC, DT, EPISODE_STEPS, OBS_SPEC, SCRIPTED_EXPERTS,
                                      TASKS, DetourEnv)
from distill_ros.tasks.detour_scene import DetourScene

FAMILY = TaskFamily(
    name="detour",
    tasks=TASKS,
    make=lambda task, **kw: DetourEnv(task, **kw),
    obs_spec=OBS_SPEC,
    act_spec=ACT_SPEC,
    control_rate_hz=1.0 / DT,
    max_episode_steps=EPISODE_STEPS,
    scripted_experts=SCRIPTED_EXPERTS,
    make_scene=DetourScene,  # (task, seed): one endless episode per reset
)

"""Humanoid whole-body family: pybullet's DeepMimic character imitating motion clips.

`env.HumanoidImitationEnv` reproduces DeepMimic's task (state, PD-target action, reward,
reference-state initialisation, early termination); `commands` builds HOVER's masked command
from the clip's future frames. Nothing here imports pybullet until an environment is made.
"""

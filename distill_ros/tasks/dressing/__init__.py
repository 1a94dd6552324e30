"""Dressing family: a pybullet soft-body garment pulled onto a seated person's arm.

Tasks are arm-pose ranges (`poses`), garments are procedural tubes (`garments`), the metric is
the dressed ratio along the arm's polyline (`geometry`), `env.DressingEnv` is the gymnasium
env and `expert` a scripted dresser. Nothing imports pybullet until an env is made.
"""

from distill_ros.tasks.dressing.family import FAMILY  # noqa: E402,F401  (the registry's entry)

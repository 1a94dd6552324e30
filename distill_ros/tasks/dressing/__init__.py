"""Dressing family: a pybullet soft-body garment pulled onto a seated person's arm.

Tasks are arm-pose ranges (`poses`), garments are procedural tubes (`garments`), the metric is
the dressed ratio along the arm's polyline (`geometry`), `env.DressingEnv` is the gymnasium
env and `expert` a scripted dresser. Nothing imports pybullet until an env is made.
"""

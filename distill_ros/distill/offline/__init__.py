"""Offline distillation (UniGraspTransformer style): teacher rollouts -> dataset -> student.

Settings: the `distill` section (`config.DistillConfig`); no section of its own.
"""

from distill_ros.distill import Algorithm, StageTable


def _stages() -> StageTable:
    from distill_ros.distill.offline.stages import STAGES

    return STAGES


ALGORITHM = Algorithm(name="offline", stages=_stages)

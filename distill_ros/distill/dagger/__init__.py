"""On-policy distillation from many teachers (DAgger, Ross et al. 2011): `algorithm: dagger`.

A vector of environments, each holding one task; the student acts (or the teacher, as β or
`on_demand` decide); every visited state is labelled by its task's teacher and goes into a
capped replay buffer; the student trains on it with MSE, Huber or a Gaussian KL. Parts:
`config` (settings), `beta` (who acts), `buffer`, `losses`, `routing` (teachers per env),
`envs` and `collect` (rollouts), `algorithm` (the learner's verbs), `runner` (the loop).
"""

from distill_ros.distill import Algorithm, StageTable
from distill_ros.distill.dagger.config import DaggerConfig


def _stages() -> StageTable:
    from distill_ros.distill.dagger.stages import STAGES

    return STAGES


ALGORITHM = Algorithm(name="dagger", stages=_stages, config_cls=DaggerConfig)

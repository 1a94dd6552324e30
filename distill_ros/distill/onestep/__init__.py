"""One-Step Diffusion Policy (OneDP): diffusion teacher over action chunks -> one-step generator.

Settings: the `onestep` section (`config.OneStepPipelineConfig`); the BC baseline reads the
`distill` section. Stages: `stages.py` (teachers and collect fall back to offline's).
"""

from distill_ros.distill import Algorithm, StageTable
from distill_ros.distill.onestep.config import OneStepPipelineConfig


def _stages() -> StageTable:
    from distill_ros.distill.onestep.stages import STAGES

    return STAGES


def _outputs(cfg, stage: str) -> list[str]:
    from distill_ros.distill.onestep.stages import stage_outputs

    return stage_outputs(cfg, stage)


ALGORITHM = Algorithm(name="onestep", stages=_stages, config_cls=OneStepPipelineConfig,
                      outputs=_outputs)

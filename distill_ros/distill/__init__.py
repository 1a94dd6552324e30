"""Distillation algorithms. A new one is one module plus its entry in `ALGORITHMS`.

An entry names the module whose `stage_<name>(run, cfg) -> dict` functions replace the
pipeline's default stages (teachers, collect, distill, export, eval) for that algorithm;
None keeps every default (offline distillation of teacher rollouts).
"""

ALGORITHMS: dict[str, str | None] = {
    "offline": None,
    "onestep": "distill_ros.distill.onestep.stages",
}

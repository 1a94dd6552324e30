"""The stage runner: each stage of the chosen algorithm, resumable from the run folder.

No algorithm lives here: the stages come from the algorithm registry (`distill.ALGORITHMS`),
and work that fans out goes through the given `Executor`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from distill_ros.config import PipelineConfig
from distill_ros.distill import get_algorithm
from distill_ros.executor import Executor, SerialExecutor
from distill_ros.rundir import STAGES, RunDir

log = logging.getLogger(__name__)


def stage_function(cfg: PipelineConfig, stage: str) -> Callable[..., dict]:
    """The chosen algorithm's function for `stage`."""
    algo = get_algorithm(cfg.distill.algorithm)
    table = algo.stages()
    if tuple(table) != STAGES:
        raise ValueError(f"algorithm {algo.name!r} must define the stages {list(STAGES)} in "
                         f"that order, it defines {list(table)}")
    return table[stage]


#: files a finished stage must have left, relative to the run folder (every algorithm);
#: a stage marked complete whose file was deleted or moved away runs again.
FINAL_ARTEFACTS = {"export": ("export/policy.onnx",),
                   "eval": ("report/eval.json", "report/eval.md")}


def run_stages(cfg: PipelineConfig, run_dir: str | Path, stages: list[str],
               force: bool = False, executor: Optional[Executor] = None) -> RunDir:
    """Run `stages` in order, skipping those already complete unless `force`."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    executor = executor or SerialExecutor()
    run = RunDir(run_dir, cfg)
    for stage in stages:
        if run.done(stage) and not force:
            missing = [p for p in FINAL_ARTEFACTS.get(stage, ()) if not (run.root / p).is_file()]
            if not missing:
                log.info("[%s] complete in an earlier run, skipped (resuming %s)", stage,
                         run.root)
                continue
            log.warning("[%s] complete in an earlier run but %s is missing: running it again",
                        stage, ", ".join(missing))
        status = run.ledger["stages"][stage]["status"]
        if status == "running":
            log.info("[%s] was interrupted earlier: resuming from what is on disk", stage)
        run.mark(stage, "running")
        started = time.monotonic()
        info = stage_function(cfg, stage)(run, cfg, executor)
        run.mark(stage, "complete", wall_s=round(time.monotonic() - started, 2), **info)
        log.info("[%s] done in %.1f s", stage, time.monotonic() - started)
    return run

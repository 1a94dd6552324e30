"""The stage runner: each stage of the chosen algorithm, resumable from the run folder.

No algorithm lives here: the stages come from the algorithm registry (`distill.ALGORITHMS`),
and work that fans out goes through the given `Executor`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from distill_ros.config import PipelineConfig
from distill_ros.distill import get_algorithm
from distill_ros.executor import Executor, SerialExecutor
from distill_ros.rundir import STAGES, RunDir

log = logging.getLogger(__name__)
THREADS_ENV = "DISTILL_ROS_THREADS"


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


def stage_outputs(cfg: PipelineConfig, stage: str) -> list[str]:
    """What `--force` deletes before `stage` runs again: everything it resumes from.

    The algorithm may say otherwise with its own `Algorithm.outputs(cfg, stage)`. Export
    and eval keep no partial state (they always start afresh), so they delete nothing.
    """
    algo = get_algorithm(cfg.distill.algorithm)
    if algo.outputs is not None:
        return algo.outputs(cfg, stage)
    return {"teachers": [f"teachers/{t}" for t in cfg.tasks], "collect": ["data"],
            "distill": ["student"]}.get(stage, [])


def set_threads(cfg: PipelineConfig) -> int:
    """Torch threads per process: `threads` of the config, or $DISTILL_ROS_THREADS if set."""
    threads = cfg.threads
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"${THREADS_ENV} must be a whole number >= 1, got {env!r}")
        threads = int(env)
    torch.set_num_threads(threads)
    log.debug("torch uses %d thread(s) per process", threads)
    return threads


def run_stages(cfg: PipelineConfig, run_dir: str | Path, stages: list[str],
               force: bool = False, executor: Optional[Executor] = None) -> RunDir:
    """Run `stages` in order, skipping those already complete unless `force`.

    `force` deletes a stage's outputs first (`stage_outputs`), so the stage starts afresh.
    The run folder is locked while the stages run. Jobs that fan out (collection shards)
    go through `executor` (default: serial, in this process).
    """
    set_threads(cfg)
    executor = executor or SerialExecutor()
    with RunDir(run_dir, cfg) as run:
        for i, stage in enumerate(stages):
            # a stage may start the next ones' jobs early (teachers: their shards), not when
            # --force is to clear those stages' outputs first
            run.next_stages = () if force else tuple(stages[i + 1:])
            _run_stage(run, cfg, stage, force, executor)
    return run


def _run_stage(run: RunDir, cfg: PipelineConfig, stage: str, force: bool,
               executor: Executor) -> None:
    status = run.ledger["stages"][stage]["status"]
    if force:
        run.clear(stage_outputs(cfg, stage))
    elif status == "complete":
        missing = [p for p in FINAL_ARTEFACTS.get(stage, ()) if not (run.root / p).is_file()]
        if not missing:
            log.info("[%s] complete in an earlier run, skipped (resuming %s)", stage, run.root)
            return
        log.warning("[%s] complete in an earlier run but %s is missing: running it again",
                    stage, ", ".join(missing))
    elif status == "running":
        log.info("[%s] was interrupted earlier: resuming from what is on disk", stage)
    run.mark(stage, "running")
    started = time.monotonic()
    info = stage_function(cfg, stage)(run, cfg, executor)
    run.mark(stage, "complete", wall_s=round(time.monotonic() - started, 2), **info)
    log.info("[%s] done in %.1f s", stage, time.monotonic() - started)

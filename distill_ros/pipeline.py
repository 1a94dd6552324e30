"""The pipeline's stages, each resumable from what the run directory already holds."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from distill_ros.atomic import atomic_write_json
from distill_ros.config import PipelineConfig
from distill_ros.distill.dataset import load_dataset, write_shard
from distill_ros.rollout import episode_seed, run_episode
from distill_ros.rundir import STAGES, RunDir
from distill_ros.tasks.base import get_family, make_env
from distill_ros.teachers import load_teacher

log = logging.getLogger(__name__)
TEACHER_EVAL_SEED = 7_000  # teacher self-evaluation seeds, apart from data and final eval


def teacher_file(run: RunDir, cfg: PipelineConfig, task: str) -> Path:
    """The user's file for `task` if the config names one, else the one trained here."""
    if task in cfg.teachers.sources:
        return Path(cfg.teachers.sources[task]).expanduser()
    return run.root / "teachers" / task / "teacher.zip"


def stage_teachers(run: RunDir, cfg: PipelineConfig) -> dict:
    """Train (or load) one expert per task and record its measured success."""
    from distill_ros.evaluate import success_rate
    from distill_ros.teachers.sb3 import train_teacher

    fam = get_family(cfg.family)
    results = {}
    for i, task in enumerate(cfg.tasks):
        report = run.path("teachers", task, "eval.json")
        if report.is_file():
            results[task] = json.loads(report.read_text())["success"]
            log.info("teacher %s: already trained (success %.2f), kept", task, results[task])
            continue
        path = teacher_file(run, cfg, task)
        started = time.monotonic()
        train_here = task not in cfg.teachers.sources
        if train_here and path.is_file():  # killed between training and its evaluation
            log.info("teacher %s: trained earlier, measuring its success", task)
        elif train_here:
            with tqdm(total=cfg.teachers.timesteps, desc=f"teacher {task}", unit="step",
                      unit_scale=True) as bar:
                train_teacher(cfg.family, task, cfg.teachers, path.parent,
                              cfg.seed * 1000 + i, bar)
        teacher = load_teacher(path, fam.obs_spec, fam.act_spec)
        results[task] = success_rate(cfg.family, task, teacher.act, cfg.teachers.eval_episodes,
                                     TEACHER_EVAL_SEED + cfg.seed, i, f"teacher {task} eval")
        atomic_write_json(report, {"task": task, "success": results[task], "source": str(path),
                                   "episodes": cfg.teachers.eval_episodes,
                                   "wall_s": time.monotonic() - started})
        log.info("teacher %s: success %.2f over %d check episodes (the eval stage measures "
                 "again on its own seeds, so the report may differ)", task, results[task],
                 cfg.teachers.eval_episodes)
    return {"success": results}


def stage_collect(run: RunDir, cfg: PipelineConfig) -> dict:
    """Roll every teacher out into npz shards; existing shards are kept, never rewritten."""
    fam = get_family(cfg.family)
    per_shard = cfg.collect.shard_episodes
    n_shards = -(-cfg.collect.episodes_per_task // per_shard)
    steps, kept = {}, 0
    with tqdm(total=n_shards * len(cfg.tasks), desc="collect", unit="shard") as bar:
        for i, task in enumerate(cfg.tasks):
            teacher = None
            env = make_env(cfg.family, task)
            for k in range(n_shards):
                shard = run.path("data", task, f"shard_{k:04d}.npz")
                bar.update(1)
                if shard.is_file():
                    kept += 1
                    continue
                teacher = teacher or load_teacher(teacher_file(run, cfg, task), fam.obs_spec,
                                                  fam.act_spec)
                first, last = k * per_shard, min((k + 1) * per_shard,
                                                 cfg.collect.episodes_per_task)
                episodes = [run_episode(env, teacher.act, episode_seed(cfg.seed, i, e))
                            for e in range(first, last)]
                write_shard(shard, episodes, task, fam.obs_spec, fam.act_spec, cfg.collect.keep)
            env.close()
    if kept:
        log.info("collect: kept %d shard(s) written by an earlier run", kept)
    obs, _, idx = load_dataset(run.root / "data", cfg.tasks, fam.obs_spec, fam.act_spec)
    for i, task in enumerate(cfg.tasks):
        steps[task] = int(np.sum(idx == i))
    return {"steps": steps, "total_steps": int(len(obs))}


def stage_distill(run: RunDir, cfg: PipelineConfig) -> dict:
    """Train the one student."""
    from distill_ros.distill.offline.train import train_offline

    return train_offline(run, cfg)


def load_student(run: RunDir, cfg: PipelineConfig, which: str = "best"):
    """The student from `student/<which>.pt`."""
    from distill_ros.distill.behavior_cloning import Distillation
    from distill_ros.students.factory import build_student

    fam = get_family(cfg.family)
    ckpt = run.root / "student" / f"{which}.pt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt} does not exist; run `distill-ros distill CONFIG` first")
    algo = Distillation(build_student(cfg.student, fam.obs_spec, fam.act_spec), 1e-3)
    algo.load(ckpt)
    return algo.get_policy().eval()


def stage_export(run: RunDir, cfg: PipelineConfig) -> dict:
    """Best student -> export/policy.onnx, parity-checked on random and real observations."""
    from distill_ros.export.onnx_export import export_student, parity_check

    fam = get_family(cfg.family)
    student = load_student(run, cfg)
    path = run.path("export", "policy.onnx")
    export_student(student, path, {
        "task_family": cfg.family, "control_rate_hz": f"{fam.control_rate_hz:g}",
        "config_hash": cfg.digest(), "tasks": json.dumps(cfg.tasks),
        "student_arch": cfg.student.arch}, cfg.export.opset)
    obs, _, _ = load_dataset(run.root / "data", cfg.tasks, fam.obs_spec, fam.act_spec)
    parity = parity_check(student, path, obs, cfg.export.parity_tol, seed=cfg.seed)
    log.info("export: %s parity max abs diff random=%.2e real=%.2e (tolerance %g)", path,
             parity["max_abs_diff_random"], parity.get("max_abs_diff_real", float("nan")),
             cfg.export.parity_tol)
    return {"path": str(path), **parity}


def stage_eval(run: RunDir, cfg: PipelineConfig) -> dict:
    """Teachers and the exported student on the same seeds; writes report/eval.*."""
    from distill_ros.evaluate import success_rate, summarize, write_report
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    fam = get_family(cfg.family)
    student = OnnxPolicy(run.root / "export" / "policy.onnx")
    rows = []
    for i, task in enumerate(cfg.tasks + cfg.held_out):
        seen = task in cfg.tasks
        teacher = None
        if seen:
            t = load_teacher(teacher_file(run, cfg, task), fam.obs_spec, fam.act_spec)
            teacher = success_rate(cfg.family, task, t.act, cfg.eval.episodes, cfg.eval.seed, i,
                                   f"eval teacher {task}")
        s = success_rate(cfg.family, task, student.act, cfg.eval.episodes, cfg.eval.seed, i,
                         f"eval student {task}")
        rows.append({"task": task, "split": "seen" if seen else "held-out",
                     "teacher": teacher, "student": s})
    summary = summarize(rows, cfg.eval.episodes)
    write_report(run.root / "report", rows, summary)
    return summary


STAGE_FUNCS: dict[str, Callable[[RunDir, PipelineConfig], dict]] = {
    "teachers": stage_teachers, "collect": stage_collect, "distill": stage_distill,
    "export": stage_export, "eval": stage_eval,
}
assert tuple(STAGE_FUNCS) == STAGES  # one list of stages, in order


def stage_function(cfg: PipelineConfig, stage: str) -> Callable[[RunDir, PipelineConfig], dict]:
    """The algorithm's own version of `stage` if its module defines one, else the default."""
    import importlib

    from distill_ros.distill import ALGORITHMS

    module = ALGORITHMS[cfg.distill.algorithm]
    if module is not None:
        override = getattr(importlib.import_module(module), f"stage_{stage}", None)
        if override is not None:
            return override
    return STAGE_FUNCS[stage]


#: files a finished stage must have left, relative to the run folder (every algorithm);
#: a stage marked complete whose file was deleted or moved away runs again.
FINAL_ARTEFACTS = {"export": ("export/policy.onnx",),
                   "eval": ("report/eval.json", "report/eval.md")}


def run_stages(cfg: PipelineConfig, run_dir: str | Path, stages: list[str],
               force: bool = False) -> RunDir:
    """Run `stages` in order, skipping those already complete unless `force`."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
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
        info = stage_function(cfg, stage)(run, cfg)
        run.mark(stage, "complete", wall_s=round(time.monotonic() - started, 2), **info)
        log.info("[%s] done in %.1f s", stage, time.monotonic() - started)
    return run

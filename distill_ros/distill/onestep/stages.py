"""The stages of `distill.algorithm: onestep` (OneDP, Wang et al. 2024).

teachers  the demonstrators (built-in scripted styles or teacher files; else the default
          stage's own teachers), each measured on its own seeds
collect   episodes of each task alternate between the demonstrators: multimodal data;
          or the user's own episodes (`onestep.dataset`) become the shards
distill   DDPM teacher over action chunks, one OneDP generator per variant, with
          `onestep.consistency` the consistency-distillation baseline, and a plain
          behaviour-cloning MLP (the default offline student) on the same shards
export    export/onestep_<variant>.onnx for each variant (and export/policy.onnx for
          `onestep.deploy`), export/onestep_consistency.onnx, export/bc.onnx; all
          parity-checked
eval      every policy on the same seeds; report/eval.{json,md,png}, success_vs_latency.png
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from distill_ros.atomic import atomic_write_json
from distill_ros.collect import collect_all
from distill_ros.config import PipelineConfig
from distill_ros.distill.dataset import load_dataset, read_episodes, write_shard
from distill_ros.distill.offline import stages as offline
from distill_ros.distill.onestep.data import (builtin_experts, dataset_file, demonstrators,
                                              start_windows, windows)
from distill_ros.executor import Executor
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family
from distill_ros.teachers import load_teacher

log = logging.getLogger(__name__)


def _write_builtin_demonstrators(run: RunDir, cfg: PipelineConfig) -> None:
    from distill_ros.teachers.scripted_styles import SCRIPTED_EXPERTS

    experts = builtin_experts(cfg.family)
    foreign = [d for d in cfg.onestep.demonstrators if d in SCRIPTED_EXPERTS and d not in experts]
    if foreign:
        raise ValueError(f"onestep.demonstrators: the built-in scripted experts {foreign} "
                         f"drive the grasp family only, not {cfg.family!r}; give teacher files"
                         + (f" or use {sorted(experts)}" if experts else ""))
    for name in [d for d in cfg.onestep.demonstrators if d in experts]:
        path = run.root / "teachers" / "demonstrators" / f"{name}.pt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.jit.save(torch.jit.script(experts[name]()), str(path))


def stage_teachers(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Measure every demonstrator per task (the default stage when none are listed)."""
    from distill_ros.evaluate import success_rate

    if cfg.onestep.dataset:
        log.info("onestep.dataset given: no demonstrators to train or measure")
        return {"success": {}, "dataset": cfg.onestep.dataset}
    if not cfg.onestep.demonstrators:
        return offline.stage_teachers(run, cfg, executor)
    if cfg.teachers.sources:
        log.info("teachers.sources is not used: onestep.demonstrators names the experts")
    _write_builtin_demonstrators(run, cfg)
    fam = get_family(cfg.family)
    results = {}
    for i, task in enumerate(cfg.tasks):
        if offline.recorded_success(run, task) is not None:
            results[task] = offline.recorded_success(run, task)
            continue
        per = {}
        for name, path in demonstrators(run, cfg, task):
            t = load_teacher(path, fam.obs_spec, fam.act_spec)
            per[name] = success_rate(cfg.family, task, t.act, cfg.teachers.eval_episodes,
                                     offline.TEACHER_EVAL_SEED + cfg.seed, i,
                                     f"demonstrator {name} {task}")
        results[task] = float(np.mean(list(per.values())))
        atomic_write_json(run.path("teachers", task, "eval.json"),
                          {"task": task, "success": results[task], "demonstrators": per,
                           "episodes": cfg.teachers.eval_episodes})
        log.info("demonstrators of %s: %s", task, per)
    return {"success": results}


def stage_collect(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Like the default stage, but episode e of a task uses demonstrator e mod count."""
    if cfg.onestep.dataset:
        return _import_dataset(run, cfg)
    files = {task: tuple(path for _, path in demonstrators(run, cfg, task))
             for task in cfg.tasks}
    return collect_all(offline.collect_plan(run, cfg, files), executor)


def _import_dataset(run: RunDir, cfg: PipelineConfig) -> dict:
    """Check the user's episodes of every task and store them as shards (kept on rerun)."""
    fam = get_family(cfg.family)
    per_shard = cfg.collect.shard_episodes
    for task in cfg.tasks:
        if any((run.root / "data" / task).glob("shard_*.npz")):
            continue
        episodes = read_episodes(dataset_file(cfg, task), fam.obs_spec, fam.act_spec,
                                 "onestep.dataset")
        for k in range(0, len(episodes), per_shard):
            write_shard(run.path("data", task, f"shard_{k // per_shard:04d}.npz"),
                        episodes[k:k + per_shard], task, fam.obs_spec, fam.act_spec, "all")
        log.info("collect: %s: %d episodes from %s", task, len(episodes),
                 dataset_file(cfg, task))
    obs, _, idx = load_dataset(run.root / "data", cfg.tasks, fam.obs_spec, fam.act_spec)
    return {"steps": {t: int(np.sum(idx == i)) for i, t in enumerate(cfg.tasks)},
            "total_steps": int(len(obs)), "dataset": cfg.onestep.dataset}


def stage_distill(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Diffusion teacher, then OneDP per variant, then the BC baseline; all resumable."""
    from distill_ros.distill.offline.train import train_offline
    from distill_ros.distill.onestep.train import (distill_generator, load_diffusion_teacher,
                                                   train_teacher)

    torch.manual_seed(cfg.seed)
    hist, chunks, frames = windows(run, cfg)
    if not (run.root / "teachers" / "diffusion" / "teacher.pt").is_file():
        train_teacher(run, cfg, hist, chunks, frames)
    teacher, scaler, teacher_wall = load_diffusion_teacher(run, cfg)
    obs_norm = scaler.norm_obs(torch.from_numpy(hist))
    info: dict = {"windows": int(len(hist)), "teacher_train_wall_s": round(teacher_wall, 4)}
    gen_obs = obs_norm   # OneDP needs observations only: it may train on more starts
    if cfg.onestep.distill_starts:
        starts = scaler.norm_obs(torch.from_numpy(start_windows(cfg)))
        gen_obs = torch.cat([obs_norm, starts])
        info["start_windows"] = int(len(starts))
    for variant in cfg.onestep.variants:
        g = distill_generator(run, cfg, variant, teacher, gen_obs)
        info[variant] = g
        info[f"{variant}_over_teacher_wall"] = round(g["distill_wall_s"] / teacher_wall, 4)
    if cfg.onestep.consistency:
        from distill_ros.distill.onestep.consistency_train import distill_consistency

        scaled = scaler.scale_actions(torch.from_numpy(chunks)).clamp(-1.0, 1.0)
        info["consistency"] = distill_consistency(run, cfg, teacher, obs_norm, scaled)
    started = time.monotonic()
    info["bc"] = train_offline(run, cfg)
    info["bc"]["wall_s_this_call"] = round(time.monotonic() - started, 2)
    atomic_write_json(run.path("student", "onestep_timing.json"), info)
    return info


def stage_export(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Each generator (and the deployable one as policy.onnx) and the BC MLP to ONNX."""
    from distill_ros.distill.onestep.train import load_diffusion_teacher, load_generator
    from distill_ros.distill.onestep.export import export_generator, generator_parity_check
    from distill_ros.export.metadata import PolicyMetadata, Provenance
    from distill_ros.export.onnx_export import export_student, parity_check
    from distill_ros.spec import ObsSpec

    fam = get_family(cfg.family)
    teacher, scaler, _ = load_diffusion_teacher(run, cfg)
    hist, _, frames = windows(run, cfg)
    meta = PolicyMetadata(ObsSpec.of(fam.obs_spec), fam.act_spec, fam.control_rate_hz,
                          cfg.family, Provenance(config_hash=cfg.digest(), tasks=tuple(cfg.tasks)))
    info: dict = {}
    for variant in cfg.onestep.variants:
        policy = load_generator(run, cfg, variant, teacher, scaler)
        names = [f"onestep_{variant}.onnx"] + (["policy.onnx"]
                                               if variant == cfg.onestep.deploy else [])
        for name in names:
            path = run.path("export", name)
            export_generator(policy, path, cfg.onestep.n_exec,
                             _arch(meta, f"onedp_{variant}"), cfg.export.opset)
            info[name] = generator_parity_check(policy, path, hist, cfg.export.parity_tol,
                                                seed=cfg.seed)
    if cfg.onestep.consistency:
        from distill_ros.distill.onestep.consistency_train import NAME, load_consistency

        path = run.path("export", f"onestep_{NAME}.onnx")
        policy = load_consistency(run, cfg, teacher, scaler)
        export_generator(policy, path, cfg.onestep.n_exec, _arch(meta, f"cd_{NAME}"),
                         cfg.export.opset)
        info[path.name] = generator_parity_check(policy, path, hist, cfg.export.parity_tol,
                                                 seed=cfg.seed)
    student = offline.load_student(run, cfg)
    path = run.path("export", "bc.onnx")
    export_student(student, path, _arch(meta, f"bc_{cfg.student.arch}"), cfg.export.opset)
    info["bc.onnx"] = parity_check(student, path, frames, cfg.export.parity_tol, seed=cfg.seed)
    return {"path": str(run.root / "export" / "policy.onnx"), "parity": info}


def _arch(meta, arch: str):
    """`meta` with its provenance's student_arch set to `arch`."""
    return dataclasses.replace(meta, provenance=dataclasses.replace(meta.provenance,
                                                                    student_arch=arch))


def stage_eval(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Every policy on the same seeds; the report with table and success-vs-latency plot."""
    from distill_ros.distill.onestep.eval import evaluate_all

    return evaluate_all(run, cfg)


def stage_outputs(cfg: PipelineConfig, stage: str) -> list[str]:
    """What `--force` deletes here: distill also trains the diffusion teacher."""
    return {"teachers": ["teachers/demonstrators", *(f"teachers/{t}" for t in cfg.tasks)],
            "collect": ["data"], "distill": ["teachers/diffusion", "student"]}.get(stage, [])


STAGES = {"teachers": stage_teachers, "collect": stage_collect, "distill": stage_distill,
          "export": stage_export, "eval": stage_eval}

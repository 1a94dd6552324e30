"""The offline algorithm's stages; other algorithms reuse the ones they do not change.

teachers  train (SB3) or load one expert per task and measure it on its own seeds
collect   roll the experts out into shards (`collect.collect_shard`, one job per shard)
distill   train the one student on the shards (`train.train_offline`)
export    best student -> export/policy.onnx, parity-checked
eval      teachers and exported student on the same seeds -> report/eval.*
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from distill_ros.collect import CollectPlan, collect_all, tidy
from distill_ros.config import PipelineConfig
from distill_ros.distill.dataset import load_dataset
from distill_ros.distill.offline.overlap import train_and_collect
from distill_ros.executor import Executor
from distill_ros.progress import PROGRESS_FILE, StageProgress
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family
from distill_ros.teachers import teacher_file as run_teacher_file
from distill_ros.teachers import jobs
from distill_ros.teachers.jobs import TEACHER_EVAL_SEED, TeacherPlan  # noqa: F401 (onestep)

log = logging.getLogger(__name__)


def teacher_file(run: RunDir, cfg: PipelineConfig, task: str) -> Path:
    """The user's file for `task`, else the family's shipped one, else the one trained here."""
    return run_teacher_file(run.root, cfg.teachers.sources, task, cfg.family)


def recorded_success(run: RunDir, task: str) -> float | None:
    """`task`'s teacher success as measured earlier (teachers/<task>/eval.json), else None."""
    return jobs.recorded_success(run.root, task)


def teacher_plan(run: RunDir, cfg: PipelineConfig) -> TeacherPlan:
    """The run's teacher jobs: one per task, trained here or taken from `teachers.sources`."""
    return TeacherPlan(cfg.family, tuple(cfg.tasks), cfg.seed, cfg.teachers, run.root,
                       dict(cfg.objects))


def stage_teachers(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Train (or load) one expert per task, one job each, and record its measured success."""
    plan = teacher_plan(run, cfg)
    todo = plan.missing()
    for task in [t for t in cfg.tasks if t not in todo]:
        log.info("teacher %s: already trained (success %.2f), kept", task, plan.recorded(task))
    if todo:
        log.info("teachers: %d to train or measure on %r", len(todo), executor)
    collect = _collect_too(run, cfg) if executor.slots() > 1 else None
    with contextlib.ExitStack() as stack:
        bars = {"teachers": stack.enter_context(StageProgress(
            "teachers", [plan.units(t) for t in todo], "step", run.root / PROGRESS_FILE))}
        if collect is not None:  # its own bar; progress.json follows the ledger's stage
            log.info("collect: each task's shards start once its teacher is trained")
            bars["collect"] = stack.enter_context(StageProgress(
                "collect", [collect.shard_size(k) for _, k in collect.missing()], "ep"))
        for r in train_and_collect(executor, plan, todo, collect, bars):
            log.info("teacher %s: success %.2f over %d check episodes in %.1f s (the eval "
                     "stage measures again on its own seeds, so the report may differ)",
                     r["task"], r["success"], cfg.teachers.eval_episodes, r["wall_s"])
    tidy(run.root / "teachers")  # what jobs killed mid-write left
    return {"success": {task: plan.recorded(task) for task in cfg.tasks}}


def _collect_too(run: RunDir, cfg: PipelineConfig) -> CollectPlan | None:
    """The collection plan when this run's collect stage comes next and is offline's.

    Only for executors that run jobs side by side: in one process the order gains nothing.
    """
    from distill_ros.distill import get_algorithm

    if "collect" not in run.next_stages:
        return None
    if get_algorithm(cfg.distill.algorithm).stages()["collect"] is not stage_collect:
        return None
    return collect_plan(run, cfg, {task: (teacher_file(run, cfg, task),) for task in cfg.tasks})


def collect_plan(run: RunDir, cfg: PipelineConfig,
                 demonstrators: dict[str, tuple[Path, ...]]) -> CollectPlan:
    """The run's collection plan with the given demonstrator files per task."""
    return CollectPlan(cfg.family, tuple(cfg.tasks), cfg.seed, cfg.collect, run.root / "data",
                       demonstrators, dict(cfg.objects))


def stage_collect(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Roll every teacher out into npz shards; existing shards are kept, never rewritten."""
    files = {task: (teacher_file(run, cfg, task),) for task in cfg.tasks}
    return collect_all(collect_plan(run, cfg, files), executor, run.root / PROGRESS_FILE)


def stage_distill(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Train the one student (on `distill.nproc` torch.distributed ranks when > 1)."""
    if cfg.distill.nproc > 1:
        from distill_ros.distill.offline.ddp import train_ddp

        return train_ddp(run, cfg)
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


def stage_export(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Best student -> export/policy.onnx, parity-checked on random and real observations."""
    fam = get_family(cfg.family)
    student = load_student(run, cfg)  # first: without a student the fix is to distil
    obs, _, _ = load_dataset(run.root / "data", cfg.tasks, fam.obs_spec, fam.act_spec)
    return export_policy(run, cfg, student, obs)


def export_policy(run: RunDir, cfg: PipelineConfig, student, real_obs) -> dict:
    """`student` -> export/policy.onnx with its metadata, parity-checked (also on `real_obs`)."""
    from distill_ros.export.metadata import PolicyMetadata, Provenance
    from distill_ros.export.onnx_export import export_student, parity_check

    fam = get_family(cfg.family)
    path = run.path("export", "policy.onnx")
    meta = PolicyMetadata(student.obs_spec, student.act_spec, fam.control_rate_hz, cfg.family,
                          Provenance(config_hash=cfg.digest(), tasks=tuple(cfg.tasks),
                                     student_arch=cfg.student.arch))
    export_student(student, path, meta, cfg.export.opset)
    parity = parity_check(student, path, real_obs, cfg.export.parity_tol, seed=cfg.seed)
    log.info("export: %s parity max abs diff random=%.2e real=%.2e (tolerance %g)", path,
             parity["max_abs_diff_random"], parity.get("max_abs_diff_real", float("nan")),
             cfg.export.parity_tol)
    return {"path": str(path), **parity}


def stage_eval(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Teachers and the exported student on the same seeds; writes report/eval.*.

    A family with its own evaluation (`TaskFamily.evaluate`) writes its own report instead.
    """
    from distill_ros.evaluate import evaluate_rows, summarize, write_report

    family_eval = get_family(cfg.family).evaluate
    if family_eval is not None:
        return family_eval(run, cfg)
    rows = evaluate_rows(run, cfg, cfg.tasks + cfg.held_out, cfg.eval.episodes,
                         executor=executor, progress_path=run.root / PROGRESS_FILE)
    summary = summarize(rows, cfg.eval.episodes)
    write_report(run.root / "report", rows, summary)
    return summary


STAGES = {"teachers": stage_teachers, "collect": stage_collect, "distill": stage_distill,
          "export": stage_export, "eval": stage_eval}

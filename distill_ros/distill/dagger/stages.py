"""The DAgger algorithm's stages; teachers and eval are offline's.

teachers  offline's: train (SB3) or load one expert per task
collect   offline's when `dagger.init: offline` (the warm start trains on it); otherwise
          nothing: DAgger labels its own states
distill   the offline student first when warm-starting, then DAgger's rounds, then RL
          fine-tuning when `dagger.finetune.iterations` > 0 (`finetune.py`); the student
          goes to student/best.pt in the offline format, so export and eval read it unchanged
export    student -> export/policy.onnx, parity-checked on random states and the buffer's
eval      offline's: teachers and the exported student on the same seeds, each reading the
          groups `dagger.teacher_groups` / `dagger.student_groups` give it (`views`)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from distill_ros.config import PipelineConfig
from distill_ros.distill.dagger.envs import FLAT_GROUP, family_maker, group_spec
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger, trained_student
from distill_ros.distill.dagger.views import ObservationViews
from distill_ros.distill.offline import stages as offline
from distill_ros.executor import Executor
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family

log = logging.getLogger(__name__)
VALIDATION_SEED = 77_000   # validation episodes, apart from the eval stage's and training's


def _student_builder(cfg: PipelineConfig):
    """Students over the family's flat layout, or over the groups DAgger hands over."""
    from distill_ros.students.factory import build_student

    fam = get_family(cfg.family)

    def build(shapes: dict[str, tuple[int, ...]]) -> torch.nn.Module:
        return build_student(cfg.student, group_spec(shapes, fam.obs_spec, fam.obs_groups),
                             fam.act_spec, frame_vectors=fam.act_frame_vectors)
    return build


def dagger_job(run: RunDir, cfg: PipelineConfig, executor: Executor | None = None,
               tasks: list[str] | None = None) -> DaggerJob:
    """This run's DAgger: family envs, the run's teachers, its student, its folders.

    `executor` is where `dagger.rollout_workers` run (Ray actors on a `RayExecutor`);
    `tasks`, the tasks that get envs (default: all of the config's).
    """
    from distill_ros.teachers import load_teacher

    fam = get_family(cfg.family)
    best = run.root / "student" / "best.pt"

    views = ObservationViews.of(cfg)

    def teacher(task: str):
        loaded = load_teacher(offline.teacher_file(run, cfg, task), fam.obs_spec, fam.act_spec)
        return fam.teacher_reading(loaded, views.teacher_groups)

    def warm_start(student: torch.nn.Module) -> None:
        student.load_state_dict(torch.load(best, map_location="cpu",
                                           weights_only=False)["student"])
        log.info("dagger: warm start from the offline student %s", best)

    return DaggerJob(make_env=family_maker(cfg.family, views.env_groups),
                     tasks=list(tasks or cfg.tasks),
                     build_student=_student_builder(cfg), load_teacher=teacher,
                     out_dir=run.root / "student" / "dagger", seed=cfg.seed,
                     init_student=warm_start if cfg.dagger.init == "offline" else None,
                     report_dir=run.root / "report", on_round=_ledger_progress(run),
                     on_finetune=_ledger_finetune_progress(run),
                     executor=executor, validate=_validator(cfg, fam))


def routed_tasks(run: RunDir, cfg: PipelineConfig) -> tuple[list[str], list[float]]:
    """The tasks that get envs, and their `task_weights`: teachers at `min_teacher_success`.

    A teacher's success is what the teachers stage measured (`teachers/<task>/eval.json`);
    a teacher with no measurement is kept.
    """
    floor, weights = cfg.dagger.min_teacher_success, cfg.dagger.task_weights
    measured = {t: offline.recorded_success(run, t) for t in cfg.tasks}
    kept = [t for t, s in measured.items() if s is None or s >= floor]
    dropped = {t: s for t, s in measured.items() if t not in kept}
    if not kept:
        raise ValueError(f"dagger.min_teacher_success {floor:g}: no teacher reaches it "
                         f"(measured {dropped}); lower it, or retrain the teachers")
    if dropped:
        log.warning("dagger: no envs for %s: their teachers' measured success is under "
                    "dagger.min_teacher_success %g", dropped, floor)
    return kept, [w for t, w in zip(cfg.tasks, weights) if t in kept]


def _validator(cfg: PipelineConfig, fam):
    """The family's validation of a student (`dagger.keep: best`), on seeds of its own."""
    if fam.validate is None:
        return None

    def validate(student: torch.nn.Module) -> float:
        return fam.validate(cfg.family, list(cfg.tasks), student, VALIDATION_SEED + cfg.seed,
                            cfg.dagger.eval_episodes)
    return validate


def _ledger_progress(run: RunDir):
    """Each round's figures into the running stage's run.json entry, as `progress`.

    The distill_trainer node reads them from there (`TrainingJob.live_figures`) and
    publishes them on /diagnostics; the stage's final figures replace them when it ends.
    """
    def on_round(row: dict) -> None:
        run.mark("distill", "running", progress={
            "round": row["round"], "rounds": row["rounds"], "teacher_queries": row["queries"],
            "beta": row.get("beta", "on_demand"), "teacher_fraction": row["teacher_fraction"],
            "buffer": row["buffer"], "last_success": row["last_success"],
            "loss": row["loss"]})
    return on_round


def _ledger_finetune_progress(run: RunDir):
    """Each fine-tuning iteration's figures into run.json as `progress`, as DAgger's rounds."""
    def on_iteration(row: dict) -> None:
        run.mark("distill", "running", progress={
            "finetune_iteration": row["iteration"], "finetune_iterations": row["iterations"],
            "failure_rate": round(row["failure_rate"], 4),
            "reward_per_step": row["reward_per_step"], "label_mse": row["label_mse"]})
    return on_iteration


def stage_collect(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Offline collection only for the warm start; DAgger labels its own states."""
    if cfg.dagger.init == "offline":
        return offline.stage_collect(run, cfg, executor)
    log.info("collect: nothing to collect, DAgger labels its own states (dagger.init: "
             "scratch)")
    return {"skipped": "dagger.init is scratch"}


def stage_distill(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """Warm start (offline student) if asked, then DAgger; the student is student/best.pt."""
    from distill_ros.distill.behavior_cloning import Distillation

    figures = {}
    tasks, weights = routed_tasks(run, cfg)
    job = dagger_job(run, cfg, executor, tasks)
    if cfg.dagger.init == "offline" and not (job.out_dir / "latest.pt").is_file():
        if cfg.dagger.student_groups:
            raise ValueError("dagger.init offline warm-starts from the offline student, which "
                             "reads the family's flat observation: leave "
                             "dagger.student_groups empty or set dagger.init: scratch")
        from distill_ros.distill.offline.train import train_offline

        figures["offline"] = train_offline(run, cfg)
    settings = dataclasses.replace(cfg.dagger, task_weights=weights)
    figures.update(train_dagger(settings, job))
    student = trained_student(job.out_dir, job.build_student)
    if cfg.dagger.finetune.iterations:
        from distill_ros.distill.dagger.finetune import finetune

        figures["finetune"] = finetune(settings, job, student)
    # the offline checkpoint format, so export/eval (offline.load_student) read it unchanged
    Distillation(student, cfg.dagger.learning_rate).save(run.path("student", "best.pt"),
                                                         source="dagger")
    return figures


def stage_export(run: RunDir, cfg: PipelineConfig, executor: Executor) -> dict:
    """The DAgger student to ONNX, parity-checked on random states and the buffer's states."""
    job = dagger_job(run, cfg)
    student = trained_student(job.out_dir, job.build_student)
    if cfg.dagger.finetune.iterations:
        from distill_ros.distill.dagger.finetune import finetuned

        student = finetuned(job.out_dir, student)
    state = torch.load(Path(job.out_dir) / "latest.pt", map_location="cpu",
                       weights_only=False)
    real = state["buffer"]["obs"]
    return offline.export_policy(run, cfg, student,
                                 real[FLAT_GROUP] if list(real) == [FLAT_GROUP] else real)


STAGES = {"teachers": offline.stage_teachers, "collect": stage_collect,
          "distill": stage_distill, "export": stage_export, "eval": offline.stage_eval}

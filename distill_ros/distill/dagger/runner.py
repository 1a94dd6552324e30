"""The DAgger loop: rounds of routed, β-mixed rollouts, updates, evaluation and checkpoints.

Everything that decides what happens next (student, optimiser, Gaussian head, buffer, β
state, counters, RNG states, curves) is written atomically to `latest.pt` after every round,
and each round's env resets are seeded by (seed, round): a run killed at any point resumes
from its last finished round and ends with the same numbers as a run never killed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from distill_ros.distill.dagger.algorithm import DAgger
from distill_ros.distill.dagger.beta import make_mixer
from distill_ros.distill.dagger.buffer import ReplayBuffer
from distill_ros.distill.dagger.collect import Groups, round_seeds
from distill_ros.distill.dagger.config import DaggerConfig
from distill_ros.distill.dagger.envs import MakeEnv
from distill_ros.distill.dagger.losses import GAUSSIAN_LOSSES
from distill_ros.distill.dagger.report import write_curves
from distill_ros.distill.dagger.routing import assign_tasks
from distill_ros.distill.dagger.workers import make_rollouts

log = logging.getLogger(__name__)
EVAL_SEED = 55_000   # evaluation resets, apart from every round's collection seeds


@dataclass
class DaggerJob:
    """What a DAgger run needs besides its settings.

    `build_student(groups)` makes the student for the observation inputs it reads
    (name -> per-sample shape); `load_teacher(task)` loads one task's teacher;
    `init_student(student)` loads the offline student's weights (`init: offline`);
    `report_dir`, if given, receives the success curves (`report.write_curves`);
    `on_round(row)` is called after each round with its figures (progress displays, benches):
    the curve's row plus `rounds` (the planned count) and `last_success` (latest evaluation);
    `on_finetune(row)` likewise after each fine-tuning iteration (`finetune.py`), with
    `iterations` (the planned count).
    `executor`: where `dagger.rollout_workers` run (a `RayExecutor`: as Ray actors; else here).
    `validate(student)`: the family's score of a student (higher is better), for `keep: best`.
    """

    make_env: MakeEnv
    tasks: Sequence[str]
    build_student: Callable[[dict[str, tuple[int, ...]]], torch.nn.Module]
    load_teacher: Callable[[str], object]
    out_dir: Path
    seed: int = 0
    init_student: Callable[[torch.nn.Module], None] | None = None
    report_dir: Path | None = None
    on_round: Callable[[dict], None] | None = None
    on_finetune: Callable[[dict], None] | None = None
    executor: object = None
    validate: Callable[[torch.nn.Module], float] | None = None


def train_dagger(cfg: DaggerConfig, job: DaggerJob) -> dict:
    """Run (or resume) DAgger to `cfg.rounds` or the query budget; returns final figures."""
    torch.manual_seed(job.seed)
    env_tasks = assign_tasks(job.tasks, cfg.n_envs, cfg.task_weights)
    task_index = np.array([list(job.tasks).index(t) for t in env_tasks], np.int32)
    rollouts = make_rollouts(cfg, job, env_tasks, cfg.loss in GAUSSIAN_LOSSES)
    try:
        algo, mixer = _setup(cfg, job, rollouts, env_tasks)
        state = _resume_or_start(cfg, job, algo, mixer, rollouts)
        state["student_inputs"] = {k: tuple(v.shape[1:]) for k, v in algo.buffer.obs.items()}
        _loop(cfg, job, rollouts, algo, mixer, state, env_tasks, task_index)
    finally:
        rollouts.close()
    if job.report_dir is not None:
        write_curves(state["curves"], Path(job.report_dir))
    last = state["curves"][-1] if state["curves"] else {}
    kept = {"kept_round": state["best"]["round"]} if "best" in state else {}
    return {"rounds": state["round"], "teacher_queries": rollouts.queries, **kept,
            "env_steps": state["env_steps"], "buffer": len(algo.buffer),
            "buffer_bytes": algo.buffer.nbytes, "dagger_wall_s": round(state["wall_s"], 2),
            "success": last.get("success"), "success_per_task": last.get("per_task"),
            "stopped_by_budget": state["budget_hit"], **mixer.stats()}


def _setup(cfg: DaggerConfig, job: DaggerJob, rollouts, env_tasks: list[str]):
    shapes = rollouts.shapes(round_seeds(job.seed, 0, len(env_tasks)), cfg.student_groups)
    student = job.build_student(shapes)
    act_dim = int(student.act_low.numel())
    gaussian = cfg.loss in GAUSSIAN_LOSSES
    buffer = ReplayBuffer(cfg.buffer_size, {k: (s, np.float32) for k, s in shapes.items()},
                          act_dim, gaussian, cfg.buffer_mode, job.seed)
    algo = DAgger(student, buffer, cfg)
    mixer = make_mixer(cfg.beta, len(env_tasks), job.seed)
    rollouts.start(act_dim)
    return algo, mixer


def _resume_or_start(cfg: DaggerConfig, job: DaggerJob, algo: DAgger, mixer,
                     rollouts) -> dict:
    state = {"round": 0, "env_steps": 0, "wall_s": 0.0, "curves": [], "budget_hit": False}
    latest = Path(job.out_dir) / "latest.pt"
    if latest.is_file():
        state.update(algo.load(latest))
        mixer.load_state_dict(state.pop("mixer"))
        rollouts.queries = int(state.pop("queries"))
        torch.set_rng_state(state.pop("torch_rng"))
        log.info("dagger: resuming after round %d (%d teacher queries)", state["round"],
                 rollouts.queries)
    elif cfg.init == "offline":
        if job.init_student is None:
            raise ValueError("dagger.init is 'offline' but this run has no offline student; "
                             "run the offline distill stage first or set dagger.init: scratch")
        job.init_student(algo.student)
        algo.restart_average()
    return state


def _loop(cfg: DaggerConfig, job: DaggerJob, rollouts, algo: DAgger, mixer, state: dict,
          env_tasks: list[str], task_index: np.ndarray) -> None:
    groups = Groups(cfg.teacher_groups, cfg.student_groups)
    budget = cfg.max_teacher_queries or None
    writer = _tensorboard(Path(job.out_dir))
    bar = tqdm(total=cfg.rounds, initial=state["round"], desc="dagger", unit="round")
    while state["round"] < cfg.rounds and not state["budget_hit"]:
        r, started = state["round"], time.monotonic()
        stats = rollouts.collect(algo, mixer, groups, cfg.steps_per_round,
                                 round_seeds(job.seed, r, len(env_tasks)), task_index, budget,
                                 cfg.action_noise)
        if r == 0 and cfg.init == "scratch" and len(algo.buffer):
            algo.student.set_normalizer(_student_arrays(algo.buffer))
            algo.restart_average()  # no update yet: the average is the student, normalised
        fit = (algo.update(cfg.learning_rate_at(r)) if len(algo.buffer)
               else {"loss": float("nan")})
        row = {"round": r + 1, "queries": rollouts.queries, "env_steps": stats.steps,
               "rollout_success": stats.successes / max(1, stats.episodes),
               "buffer": len(algo.buffer), **fit, **mixer.stats()}
        if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds or stats.budget_hit:
            seeds = round_seeds(EVAL_SEED, job.seed, len(env_tasks))
            per_task, mean_return = rollouts.evaluate(algo, cfg.student_groups,
                                                      cfg.eval_episodes, seeds)
            row.update(per_task=per_task, success=float(np.mean(list(per_task.values()))),
                       mean_return=mean_return)
            if cfg.keep == "best":
                _keep_best(job, algo, state, row)
        state["wall_s"] += time.monotonic() - started
        state["env_steps"] += stats.steps
        state.update(round=r + 1, budget_hit=stats.budget_hit)
        row["wall_s"] = round(state["wall_s"], 3)
        state["curves"].append(row)
        algo.save(Path(job.out_dir) / "latest.pt", **state, mixer=mixer.state_dict(),
                  queries=rollouts.queries, torch_rng=torch.get_rng_state())
        _log_round(bar, writer, row, stats.steps / max(1e-9, time.monotonic() - started))
        if job.on_round is not None:
            job.on_round({**row, "rounds": cfg.rounds, "last_success": _last_success(state)})
    bar.close()
    if writer is not None:
        writer.close()


def _keep_best(job: DaggerJob, algo: DAgger, state: dict, row: dict) -> None:
    """`keep: best`: score the student (validation, else mean return); keep the best's weights."""
    row["score"] = (row["mean_return"] if job.validate is None
                    else float(job.validate(algo.get_policy())))
    best = state.get("best")
    if best is None or row["score"] > best["score"]:
        state["best"] = {"round": row["round"], "score": row["score"],
                         "student": {k: v.clone() for k, v in
                                     algo.get_policy().state_dict().items()}}
        log.info("dagger: round %d is the best so far (score %.4f)", row["round"],
                 row["score"])


def _last_success(state: dict) -> float | None:
    """The student's success at its latest evaluation (None before the first)."""
    return next((c["success"] for c in reversed(state["curves"]) if "success" in c), None)


def _student_arrays(buffer: ReplayBuffer) -> object:
    arrays = {k: v[:len(buffer)] for k, v in buffer.obs.items()}
    return arrays["obs"] if list(arrays) == ["obs"] else arrays


def _log_round(bar, writer, row: dict, steps_per_s: float) -> None:
    bar.update(1)
    bar.set_postfix(success=f"{row.get('success', float('nan')):.2f}", queries=row["queries"],
                    loss=f"{row['loss']:.4f}", steps_s=f"{steps_per_s:.0f}")
    log.info("dagger round %d: queries %d, loss %.4f, success %s", row["round"],
             row["queries"], row["loss"], row.get("success"))
    if writer is None:
        return
    for key in ("loss", "rollout_success", "teacher_fraction"):
        writer.add_scalar(f"dagger/{key}", row[key], row["round"])
    if "success" in row:
        writer.add_scalar("dagger/success", row["success"], row["round"])
        writer.add_scalar("dagger/success_vs_queries", row["success"], row["queries"])


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; tolerate a trimmed install
        log.warning("tensorboard not installed: DAgger curves go to latest.pt/curves.json only")
        return None
    return SummaryWriter(str(out_dir / "tb"))


def trained_student(out_dir: Path, build_student: Callable[[dict], torch.nn.Module]
                    ) -> torch.nn.Module:
    """The student of the DAgger run in `out_dir`, rebuilt over the inputs it was trained on.

    The last round's weights (their average with `ema_decay`), or with `keep: best` those
    of the best evaluation.
    """
    state = torch.load(Path(out_dir) / "latest.pt", map_location="cpu", weights_only=False)
    student = build_student(dict(state["student_inputs"]))
    best, average = state.get("best"), state.get("student_average")
    last = state["student"] if average is None else average
    student.load_state_dict(last if best is None else best["student"])
    return student.eval()

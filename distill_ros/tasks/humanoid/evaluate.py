"""HOVER's evaluation: per clip and command mode, how well a policy tracks the clip.

Each (clip, mode) runs `episodes` seeded episodes (the same starts for every policy and
mode) to the time limit or a fall, and reports: fall rate; mean imitation reward per step
of the whole episode, the steps a fall cut off counting 0 (so falling early never raises
it); and keypoint MPJPE (mm, root-relative), joint-angle error (rad) and root velocity error
(m/s), averaged over the steps before any fall. Teachers read DeepMimic's state (with the
phase) and ignore the command, so they are measured once per clip (mode `any`); a run whose
DAgger teacher also reads the heading error is measured with that one as well ("steered
teacher"; the student's ratio stays against the shipped expert); clips without a teacher
(e.g. `run`, `kick`, `punch`) are measured for students only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from distill_ros.rollout import episode_seed
from distill_ros.tasks.humanoid.commands import EVAL_MODES
from distill_ros.tasks.humanoid.hover import GROUPS
from distill_ros.tasks.humanoid.report import HIGHER_IS_BETTER, summarize, write_report

log = logging.getLogger(__name__)
METRICS = ("fall_rate", "reward", "mpjpe_mm", "joint_err_rad", "root_vel_err")
TEACHER_MODE = "any"
TEACHER, STEERED = "teacher", "steered teacher"

#: groups of one step (state, proprio, command, command_mask) -> (36,) PD targets
Act = Callable[[dict[str, np.ndarray]], np.ndarray]


def episode_metrics(env, act: Act, seed: int, mode: str, max_steps: int | None = None
                    ) -> dict[str, float]:
    """One episode of `act` on a `HoverEnv` with `mode` pinned: sums and counts per metric."""
    obs, _ = env.reset(seed=seed, options={"mode": mode})
    sums = dict.fromkeys(METRICS[1:], 0.0)
    steps, fell = 0, False
    while max_steps is None or steps < max_steps:
        action = np.asarray(act(obs), np.float64).reshape(-1)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"policy returned a non-finite action at step {steps} of the "
                             f"episode with seed {seed}")
        obs, reward, fell, truncated, info = env.step(action)
        sums["reward"] += reward
        for key in METRICS[2:]:
            sums[key] += info[key]
        steps += 1
        if fell or truncated:
            break
    # the control steps the episode would have had without the fall (time limit, step cap)
    lost = math.ceil((env.max_seconds - env.time) * env.control_hz) if fell else 0
    horizon = steps + max(0, lost)
    horizon = horizon if max_steps is None else min(horizon, max_steps)
    return {"steps": steps, "horizon": horizon, "fell": bool(fell), **sums}


def aggregate(runs: Sequence[dict]) -> dict[str, float]:
    """The five metrics of `episode_metrics` episodes, as the eval stage reports them.

    Fall rate: the share of episodes that fell. Reward: per step of the whole episodes
    (`horizon`, steps lost to a fall counting 0). Errors: per step before any fall.
    """
    steps = sum(r["steps"] for r in runs)
    row = {"fall_rate": float(np.mean([r["fell"] for r in runs]))}
    row.update({k: sum(r[k] for r in runs) / max(1, steps) for k in METRICS[2:]})
    row["reward"] = sum(r["reward"] for r in runs) / max(1, sum(r["horizon"] for r in runs))
    return row


def paired_comparison(mine: list[dict], theirs: list[dict], resamples: int = 2000,
                      seed: int = 0, level: float = 0.95) -> dict:
    """Two policies on the same starts: per metric, who is ahead, and is it beyond noise.

    `mine` and `theirs` are `evaluate.episode_metrics` episodes, start by start (the same
    seeds, in the same order). Per metric: both values as the eval stage aggregates them,
    the difference (mine - theirs), its `level` interval from a paired bootstrap over the
    starts (`resamples` draws of the starts, with replacement, the same draws for both),
    `strict` (mine matches or beats theirs on the value itself, as `versus_specialists`
    reads it) and a `verdict`: `beats` or `loses` when the interval excludes 0 on that side,
    else `matches` (the starts cannot tell them apart). Seeded: the same call, the same
    interval.
    """
    if len(mine) != len(theirs) or not mine:
        raise ValueError(f"a paired comparison needs the same starts for both policies; got "
                         f"{len(mine)} and {len(theirs)} episodes")
    n = len(mine)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))

    def boot(runs: list[dict]) -> dict[str, np.ndarray]:
        """Each metric's aggregate over every resample of the starts: (resamples,)."""
        col = {k: np.array([float(r[k]) for r in runs])
               for k in ("fell", "steps", "horizon", *HIGHER_IS_BETTER) if k != "fall_rate"}
        out = {"fall_rate": col["fell"][idx].mean(axis=1),
               "reward": col["reward"][idx].sum(axis=1)
               / np.maximum(1.0, col["horizon"][idx].sum(axis=1))}
        steps = np.maximum(1.0, col["steps"][idx].sum(axis=1))
        out.update({k: col[k][idx].sum(axis=1) / steps
                    for k in HIGHER_IS_BETTER if k not in out})
        return out

    a, b = aggregate(mine), aggregate(theirs)
    da, db = boot(mine), boot(theirs)
    tail = (1.0 - level) / 2.0 * 100.0
    metrics = {}
    for k, higher in HIGHER_IS_BETTER.items():
        lo, hi = np.percentile(da[k] - db[k], [tail, 100.0 - tail])
        ahead, behind = (lo > 0, hi < 0) if higher else (hi < 0, lo > 0)
        metrics[k] = {"mine": a[k], "theirs": b[k], "diff": a[k] - b[k],
                      "interval": [float(lo), float(hi)],
                      "strict": bool(a[k] >= b[k] if higher else a[k] <= b[k]),
                      "verdict": "beats" if ahead else "loses" if behind else "matches"}
    return {"starts": n, "level": level, "resamples": resamples, "metrics": metrics,
            "strict": sum(m["strict"] for m in metrics.values()),
            "not_worse": sum(m["verdict"] != "loses" for m in metrics.values())}


def evaluate_policy(family: str, clip: str, clip_index: int, act: Act, modes: Sequence[str],
                    episodes: int, seed: int, desc: str = "",
                    max_steps: int | None = None) -> list[dict]:
    """One row per mode: the metrics of `act` over `episodes` seeded episodes of `clip`."""
    from distill_ros.tasks.base import make_env

    env = make_env(family, clip, groups=GROUPS)
    rows = []
    try:
        for mode in modes:
            runs = [episode_metrics(env, act, episode_seed(seed, clip_index, ep), mode,
                                    max_steps)
                    for ep in tqdm(range(episodes), desc=desc or f"eval {clip} {mode}",
                                   unit="ep", leave=False)]
            rows.append({"clip": clip, "mode": mode, "episodes": episodes,
                         "steps": sum(r["steps"] for r in runs), **aggregate(runs)})
    finally:
        env.close()
    return rows


def validation_score(family: str, tasks: Sequence[str], student, seed: int, episodes: int,
                     mode: str = EVAL_MODES[0]) -> float:
    """Mean imitation reward of a torch `StudentPolicy` over `tasks`, `mode` pinned.

    Falls count 0 for the steps they cut off. This is how `dagger.keep: best` ranks the
    rounds' students.
    """
    names = list(student.obs_spec.input_names)

    def act(groups: dict[str, np.ndarray]) -> np.ndarray:
        return student.act(pick_inputs(names, groups, batch=True))[0]
    rows = [evaluate_policy(family, clip, i, act, (mode,), episodes, seed, f"validate {clip}")[0]
            for i, clip in enumerate(tasks)]
    return float(np.mean([row["reward"] for row in rows]))


def student_act(policy) -> Act:
    """An exported student (`OnnxPolicy`) as an `Act`: its inputs picked from the groups.

    A flat student (one input `obs`) reads DeepMimic's state.
    """
    names = list(policy.groups.input_names)
    return lambda g: policy.act(pick_inputs(names, g))


def pick_inputs(names: Sequence[str], groups: dict[str, np.ndarray], batch: bool = False):
    """A student's inputs from the observation groups, with a leading batch axis if `batch`.

    A flat student (one input `obs`) reads DeepMimic's state; others read their groups.
    """
    def add(value: np.ndarray) -> np.ndarray:
        return value[None] if batch else value
    if list(names) == ["obs"]:
        return add(groups["state"])
    return {k: add(groups[k]) for k in names}


def teacher_act(teacher, groups: Sequence[str] = ("state",)) -> Act:
    """A teacher (its `groups` concatenated, e.g. the 197-value state -> action) as an `Act`."""
    return lambda g: np.asarray(teacher.act(np.concatenate([g[k] for k in groups])[None]))[0]


def _teacher_names(teacher, fam, cfg) -> list[str]:
    """The shipped expert (the student's yardstick), and the run's DAgger teacher if other."""
    groups = tuple(cfg.dagger.teacher_groups)   # tasks/ reads the config, not distill/
    steered = fam.teacher_reading(teacher, groups) is not teacher
    return [TEACHER, STEERED] if steered else [TEACHER]


@dataclass(frozen=True)
class EvalJob:
    """One policy on one clip in one command mode: a worker's share of the eval stage."""

    family: str
    clip: str
    clip_index: int             # in tasks + held_out: picks the episode seeds
    policy: str                 # TEACHER, STEERED or the student's label
    path: str                   # the teacher's checkpoint, or the student's ONNX file
    mode: str                   # a teacher ignores the command: `full`, reported as `any`
    episodes: int
    seed: int
    split: str
    teacher_groups: tuple[str, ...] = ("state",)
    max_steps: int | None = None


def run_eval_job(job: EvalJob) -> dict:
    """The row of one `EvalJob` (runs in a worker process, or here when serial)."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy
    from distill_ros.tasks.base import get_family
    from distill_ros.teachers import load_teacher

    teacher_job = job.policy in (TEACHER, STEERED)
    if teacher_job:
        fam = get_family(job.family)
        teacher = load_teacher(Path(job.path), fam.obs_spec, fam.act_spec)
        groups = ("state",)
        if job.policy == STEERED:
            groups = job.teacher_groups
            teacher = fam.teacher_reading(teacher, groups)
        act = teacher_act(teacher, groups)
    else:
        act = student_act(OnnxPolicy(Path(job.path), want_gpu=False))
    [row] = evaluate_policy(job.family, job.clip, job.clip_index, act, (job.mode,),
                            job.episodes, job.seed, f"eval {job.policy} {job.clip}",
                            job.max_steps)
    if teacher_job:
        row["mode"] = TEACHER_MODE
    return {**row, "policy": job.policy, "split": job.split}


def eval_jobs(run_root: Path, cfg, modes: Sequence[str], label: str = "student",
              max_steps: int | None = None) -> list[EvalJob]:
    """The eval stage's jobs, in report order: per clip, its teachers, then the student.

    The student gets one job per mode, so a pool's workers share the load evenly; every
    job's episodes use the same seeds as a serial run, so the rows are the same.
    """
    from distill_ros.tasks.base import get_family
    from distill_ros.teachers import load_teacher, teacher_file

    fam = get_family(cfg.family)
    onnx = Path(run_root) / "export" / "policy.onnx"
    if not onnx.is_file():
        raise FileNotFoundError(f"{onnx} does not exist; run `distill-ros export CONFIG` first")
    common = dict(family=cfg.family, episodes=cfg.eval.episodes, seed=cfg.eval.seed,
                  teacher_groups=tuple(cfg.dagger.teacher_groups), max_steps=max_steps)
    jobs = []
    for i, clip in enumerate(cfg.tasks + cfg.held_out):
        split = "seen" if clip in cfg.tasks else "held-out"
        path = teacher_file(run_root, cfg.teachers.sources, clip, cfg.family)
        if clip in cfg.tasks and path.is_file():
            teacher = load_teacher(path, fam.obs_spec, fam.act_spec)
            jobs += [EvalJob(clip=clip, clip_index=i, policy=name, path=str(path),
                             mode="full", split=split, **common)
                     for name in _teacher_names(teacher, fam, cfg)]
        jobs += [EvalJob(clip=clip, clip_index=i, policy=label, path=str(onnx), mode=mode,
                         split=split, **common) for mode in modes]
    return jobs


def evaluate_run(run, cfg, modes: Sequence[str] = EVAL_MODES, label: str = "student",
                 max_steps: int | None = None) -> dict:
    """The eval stage: teachers (seen clips) and the exported student on every clip x mode.

    The config's `executor` kind runs the jobs: `processes` on one worker per core this
    process may use (the rows are the same as serial; the workers stop with the stage), `ray`
    as `ray` says, `serial` here. Writes report/eval.json (rows), eval.md (the table) and
    eval.png; returns a summary.
    """
    from distill_ros.executor import stage_executor

    jobs = eval_jobs(Path(run.root), cfg, modes, label, max_steps)
    with stage_executor(cfg.executor, cfg.ray) as executor:
        rows = executor.map(run_eval_job, jobs, label="eval")
    summary = summarize(rows)
    write_report(Path(run.root) / "report", rows, summary)
    return summary

"""How many falls a student-sized action error costs the shipped experts, on the eval starts.

The fall target ("the student does not fall more often than the teacher") is read on 24
seeded starts per clip, where a fall or two is noise: some starts (e.g. reference-state
initialisation in mid-air on jump) are on a knife edge for the expert itself. This bench
measures that edge with the finished run's own numbers:

1. **The student's error**: along the student's eval episodes (full command), the RMS per
   action dimension of (student - expert) on the same states, in normalised [-1, 1] units.
2. **The perturbed expert**: the expert on the same starts with Gaussian noise of sd
   `sigma` (normalised, per dimension, every step) added to its actions, `--draws` noise
   draws per start, for sigma 0 (the expert as the eval stage reads it), the measured
   student error, and any `--sigmas`.

Prints one JSON object: per clip, the student's and the plain expert's imitation reward (per
step of the whole episodes, steps lost to a fall counting 0, as the eval stage reads it) and
their ratio, the student's error and falls (re-run on the same starts:
at the config's `eval.episodes` they are the eval stage's), and the perturbed expert's falls
per `episodes` (mean over draws) and by start. `--episodes` reads more starts than the eval
stage (the same first ones, then new ones); the falls of the student and of the plain expert
come with their 95% Wilson intervals, so "falls no more often" can be read with its noise.

    OPENBLAS_NUM_THREADS=1 python bench/bench_humanoid_margin.py \
        --config config/humanoid_quick.yaml --run-dir runs/humanoid_quick [--draws 4] \
        [--episodes 96] [--plain]

`--plain` skips the noise levels: the student against the plain expert only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: batched teachers, 1 thread

import numpy as np  # noqa: E402

from distill_ros.config import load_config  # noqa: E402
from distill_ros.evaluate import wilson_interval  # noqa: E402
from distill_ros.executor import stage_executor  # noqa: E402
from distill_ros.progress import stdout_to_stderr  # noqa: E402
from distill_ros.rollout import episode_seed  # noqa: E402
from distill_ros.tasks.base import get_family, make_env  # noqa: E402
from distill_ros.tasks.humanoid.evaluate import (STEERED, TEACHER,  # noqa: E402
                                                 episode_metrics, student_act, teacher_act)
from distill_ros.tasks.humanoid.hover import GROUPS  # noqa: E402


@dataclass(frozen=True)
class Job:
    """One clip's starts: the expert with noise `sigma` (draw `draw`), or the student's error."""

    family: str
    clip: str
    clip_index: int
    teacher: str
    student: str            # the ONNX file; "" for a perturbed-expert job
    sigma: float
    draw: int
    episodes: int
    seed: int


def _policies(job: Job):
    from distill_ros.runtime.onnx_policy import OnnxPolicy
    from distill_ros.teachers import load_teacher

    fam = get_family(job.family)
    teacher = teacher_act(load_teacher(Path(job.teacher), fam.obs_spec, fam.act_spec))
    half = (np.asarray(fam.act_spec.high) - np.asarray(fam.act_spec.low)) / 2.0
    student = student_act(OnnxPolicy(Path(job.student), want_gpu=False)) if job.student else None
    return teacher, student, half


def run_job(job: Job) -> dict:
    """Falls by start of the perturbed expert, or the student's RMS error against it."""
    teacher, student, half = _policies(job)
    env = make_env(job.family, job.clip, groups=GROUPS)
    falls, errors, reward, horizon = [], [], 0.0, 0
    try:
        for ep in range(job.episodes):
            rng = np.random.default_rng([job.seed, job.clip_index, ep, job.draw])
            if student is None:
                def act(groups):
                    return teacher(groups) + job.sigma * half * rng.standard_normal(half.shape)
            else:
                def act(groups):
                    action = student(groups)
                    errors.append((action - teacher(groups)) / half)
                    return action
            row = episode_metrics(env, act, episode_seed(job.seed, job.clip_index, ep), "full")
            if row["fell"]:
                falls.append(ep)
            reward, horizon = reward + row["reward"], horizon + row["horizon"]
    finally:
        env.close()
    out = {"clip": job.clip, "sigma": job.sigma, "draw": job.draw, "falls": falls,
           "reward": reward, "horizon": horizon}
    if errors:
        out["student_rms"] = float(np.sqrt(np.mean(np.square(errors))))
    return out


def _interval(falls: int, episodes: int) -> list[float]:
    """95% Wilson interval of a fall count, in falls of `episodes`."""
    return [round(episodes * x, 1) for x in wilson_interval(falls, episodes)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/humanoid_quick.yaml")
    p.add_argument("--run-dir", required=True, help="the finished run (export/, report/)")
    p.add_argument("--clips", default="", help="comma-separated seen clips (default: all)")
    p.add_argument("--sigmas", default="", help="more noise levels, comma-separated")
    p.add_argument("--draws", type=int, default=4, help="noise draws per start")
    p.add_argument("--episodes", type=int, default=0,
                   help="starts per clip (default: eval.episodes of the config)")
    p.add_argument("--plain", action="store_true",
                   help="only the student and the expert without noise (falls, reward)")
    p.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    args = p.parse_args(argv)
    if args.draws < 1:
        p.error(f"--draws must be at least 1 (noise draws per start), got {args.draws}")
    if args.episodes < 0:
        p.error(f"--episodes must be a number of starts per clip (0: the config's), got "
                f"{args.episodes}")
    try:
        extra = [float(s) for s in args.sigmas.split(",") if s]
    except ValueError:
        p.error(f"--sigmas must be comma-separated numbers such as 0.01,0.02, got "
                f"{args.sigmas!r}")
    if any(s < 0 for s in extra):
        p.error(f"--sigmas must be non-negative noise levels, got {args.sigmas!r}")
    from distill_ros.teachers import teacher_file

    cfg = load_config(Path(args.config))
    run = Path(args.run_dir)
    onnx, report = run / "export" / "policy.onnx", run / "report" / "eval.json"
    for path in (onnx, report):
        if not path.is_file():
            p.error(f"{path} does not exist: finish the run first (distill-ros run "
                    f"{args.config} --run-dir {run})")
    clips = args.clips.split(",") if args.clips else list(cfg.tasks)
    if unknown := [c for c in clips if c not in cfg.tasks]:
        p.error(f"--clips: {unknown} are not seen clips of {args.config} ({cfg.tasks})")
    episodes = args.episodes or cfg.eval.episodes
    common = dict(family=cfg.family, episodes=episodes, seed=cfg.eval.seed)
    teachers = {c: str(teacher_file(run, cfg.teachers.sources, c, cfg.family)) for c in clips}
    index = {c: cfg.tasks.index(c) for c in clips}
    started = time.perf_counter()
    # pybullet prints to fd 1, here and in the workers; the workers stop with the block
    with stdout_to_stderr(), stage_executor(None, processes=args.processes) as executor:
        measured = executor.map(run_job, [
            Job(clip=c, clip_index=index[c], teacher=teachers[c], student=str(onnx),
                sigma=0.0, draw=0, **common) for c in clips], label="student error")
        error = {r["clip"]: r["student_rms"] for r in measured}
        student_falls = {r["clip"]: r["falls"] for r in measured}
        student_reward = {r["clip"]: r["reward"] / max(1, r["horizon"]) for r in measured}
        sigmas = {c: [0.0] if args.plain else sorted({0.0, round(error[c], 4), *extra})
                  for c in clips}
        jobs = [Job(clip=c, clip_index=index[c], teacher=teachers[c], student="",
                    sigma=s, draw=d, **common)
                for c in clips for s in sigmas[c] for d in range(args.draws if s else 1)]
        rows = executor.map(run_job, jobs, label="perturbed expert")
    evals = json.loads(report.read_text())["rows"]
    out = {"config": args.config, "run": str(run), "episodes": episodes,
           "draws": args.draws, "wall_s": round(time.perf_counter() - started, 1), "clips": {}}
    for c in clips:
        [student] = [r for r in evals if r["clip"] == c and r["mode"] == "full"
                     and r["policy"] not in (TEACHER, STEERED)]
        expert = {}
        for s in sigmas[c]:
            mine = [r for r in rows if r["clip"] == c and r["sigma"] == s]
            by_start: dict[int, int] = {}
            for r in mine:
                for ep in r["falls"]:
                    by_start[ep] = by_start.get(ep, 0) + 1
            expert[str(s)] = {"falls": sum(len(r["falls"]) for r in mine) / len(mine),
                              "draws": len(mine), "by_start": dict(sorted(by_start.items()))}
        falls = student_falls[c]
        [plain] = [r for r in rows if r["clip"] == c and r["sigma"] == 0.0]
        expert_reward = plain["reward"] / max(1, plain["horizon"])
        out["clips"][c] = {
            "student_reward": round(student_reward[c], 4),
            "expert_reward": round(expert_reward, 4),
            "reward_ratio": round(student_reward[c] / expert_reward, 4),
            "student_rms": round(error[c], 4), "student_falls": len(falls),
            "student_falls_95": _interval(len(falls), episodes),
            "student_by_start": falls,
            "expert_falls_95": _interval(round(expert["0.0"]["falls"]), episodes),
            "expert": expert}
        if episodes == cfg.eval.episodes:  # the same episodes as the eval stage's
            out["clips"][c]["report_student_falls"] = round(student["fall_rate"] * episodes)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

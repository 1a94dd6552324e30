"""Dressing's held-out comparison at more episodes than the eval stage: students vs best teacher.

The eval stage runs `eval.episodes` (5 in dressing_quick) per cell. When teachers and student
dress nearly every episode, a held-out cell's winner is decided by one failure, or by how far
past 0.8 each success stops. This bench re-runs only the held-out tasks of a finished run, with
`--episodes` eval seeds (the eval stage's first seeds, extended) and `--selection` seeds of
their own (after the eval seeds) to pick each task's best single teacher, as the eval stage
picks it. It prints, per held-out task and policy: success rate with a 95% Wilson interval,
mean final ratio, and, for each student, on how many seeds it ended above / below the picked
teacher. Extra students (e.g. the offline baseline's export) join with `--student NAME=PATH`.
`--held-out` names other held-out tasks than the config's, e.g. the ranges beyond the grid
(`poses.BEYOND_RANGES`), where the teachers no longer all dress every episode; the config's
own held-out tasks keep their eval stage's seeds. Each task also reports the selection-seed
mean of every teacher and their average ("any single teacher", what a range's teacher does
there when nobody picks it for that task). `garments` pools, per held-out garment, the episodes
of every task that wears it (e.g. `f1e1@gown_long,f3e3@gown_long`: the garment on held-out
poses too).

    python bench/bench_dressing_heldout.py --config config/dressing_quick.yaml \
        --run-dir runs/dressing_quick --episodes 20 --selection 10 --processes 2 \
        --student offline=runs/dressing_quick_offline/export/policy.onnx \
        [--held-out f3e1,f1e3,f3e3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from distill_ros.config import load_config
from distill_ros.evaluate import wilson_interval
from distill_ros.executor import make_executor
from distill_ros.rollout import episode_seed, task_index
from distill_ros.tasks.base import check_tasks, get_family
from distill_ros.tasks.dressing.env import parse_task
from distill_ros.tasks.dressing.evaluate import Job, pick_teachers, run_job, teacher_paths


def summarise(result: dict) -> dict:
    ratios, wins = result["ratios"], result["successes"]
    low, high = wilson_interval(sum(wins), len(wins))
    return {"success": float(np.mean(wins)), "success_95": [round(low, 3), round(high, 3)],
            "ratio": float(np.mean(ratios)), "ratios": [round(r, 3) for r in ratios]}


def versus_teacher(mine: dict, teacher: dict) -> dict:
    """A student's summary, with how it compares seed by seed with the picked teacher."""
    diff = np.subtract(mine["ratios"], teacher["ratios"])   # the same seeds, in order
    return dict(summarise(mine), seeds_above_teacher=int((diff > 0).sum()),
                seeds_below_teacher=int((diff < 0).sum()),
                beats_best_teacher=bool(np.mean(diff) > 0))


def by_garment(results: dict, tasks: list[str], students: list[str]) -> dict:
    """Per held-out garment (tasks ``<range>@<garment>``): each policy's episodes pooled.

    The picked teacher is each task's own (a different range's teacher per pose), so the
    pooled "best teacher" is the best any single teacher does task by task, and a student
    beats it when its pooled mean ratio is higher.
    """
    garments: dict[str, list[str]] = {}
    for task in tasks:
        if (garment := parse_task(task)[1]) is not None:
            garments.setdefault(garment.name, []).append(task)
    out = {}
    for garment, names in garments.items():
        def pooled(who: str) -> dict:
            return {key: [x for t in names for x in results[t, who][key]]
                    for key in ("ratios", "successes")}
        teacher = pooled("best teacher")
        out[garment] = {"tasks": names, "policies": {
            "best teacher": summarise(teacher),
            **{name: versus_teacher(pooled(name), teacher) for name in students}}}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="the run's pipeline YAML")
    p.add_argument("--run-dir", required=True, help="the finished run (teachers/, export/)")
    p.add_argument("--episodes", type=int, default=20, help="eval seeds per held-out task")
    p.add_argument("--selection", type=int, default=10,
                   help="seeds per teacher per held-out task to pick the best teacher")
    p.add_argument("--student", action="append", default=[], metavar="NAME=PATH",
                   help="another exported student to compare (repeatable)")
    p.add_argument("--held-out", default="",
                   help="comma-separated held-out tasks instead of the config's")
    p.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    args = p.parse_args(argv)
    cfg = load_config(Path(args.config))
    held_out = args.held_out.split(",") if args.held_out else list(cfg.held_out)
    try:
        check_tasks(get_family(cfg.family), held_out, "--held-out")
    except ValueError as err:
        p.error(str(err))
    if trained := [t for t in held_out if t in cfg.tasks]:
        p.error(f"--held-out: {trained} are training tasks of {args.config}; name tasks "
                "its teachers did not train on")
    run = Path(args.run_dir)
    students = {"student": str(run / "export" / "policy.onnx")}
    for item in args.student:
        name, _, path = item.partition("=")
        if not path or name in students or name == "best teacher":
            p.error(f"--student {item!r}: give NAME=PATH with a new name")
        students[name] = path
    for name, path in students.items():
        if not Path(path).is_file():
            p.error(f"{name}: no exported student at {path}; run the pipeline first")
    teachers = teacher_paths(run, cfg)
    n, s = args.episodes, args.selection

    def seeds(task: str, first: int, count: int) -> tuple[int, ...]:
        i = task_index(cfg, task, held_out.index(task))   # the config's: the eval stage's
        return tuple(episode_seed(cfg.eval.seed, i, ep) for ep in range(first, first + count))
    executor = make_executor(args.processes, "processes" if args.processes > 1 else "serial")
    start = time.monotonic()
    select = executor.map(run_job, [Job(task, who, teachers[who], seeds(task, n, s), "select")
                                    for task in held_out for who in cfg.tasks])
    picked = pick_teachers(select, cfg.tasks, held_out)   # task -> (best, every mean)
    jobs, labels = [], []
    for task, (best, _) in picked.items():
        jobs.append(Job(task, best, teachers[best], seeds(task, 0, n)))
        labels.append((task, "best teacher"))
        for name, path in students.items():
            jobs.append(Job(task, "student", path, seeds(task, 0, n)))
            labels.append((task, name))
    results = dict(zip(labels, executor.map(run_job, jobs)))
    out = {"config": args.config, "run": str(run), "episodes": n, "selection_episodes": s,
           "tasks": {}}
    for task in held_out:
        teacher = results[task, "best teacher"]
        policies = {"best teacher": summarise(teacher)}
        for name in students:
            policies[name] = versus_teacher(results[task, name], teacher)
        best, scores = picked[task]
        out["tasks"][task] = {"best_teacher": best,
                              "selection": {t: round(v, 3) for t, v in scores.items()},
                              "any_single_teacher": round(float(np.mean(list(scores.values()))),
                                                          3),
                              "policies": policies}
    out["garments"] = by_garment(results, held_out, list(students))
    out["wall_s"] = round(time.monotonic() - start, 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

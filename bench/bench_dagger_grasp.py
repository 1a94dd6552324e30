"""DAgger vs offline distillation on a finished grasp run's objects (`bench_dagger.py --family
grasp`): the issue's three criteria, measured through the pipeline's own stages.

1. DAgger's success on the seen objects over the teachers' mean (target >= 0.9);
2. DAgger's success on held-out objects vs the offline student's (target >=);
3. DAgger's teacher queries over the offline collection's (target <= 0.5), counted two ways:
   every step the teachers were asked for (failed episodes included) and the steps stored.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

from distill_ros.config import PipelineConfig, load_config
from distill_ros.distill import get_algorithm
from distill_ros.evaluate import evaluate_rows
from distill_ros.pipeline import run_stages
from distill_ros.rollout import episode_seed, run_episode
from distill_ros.tasks.base import get_family, make_env
from distill_ros.teachers import load_teacher, teacher_file


def _load(data: dict, path: Path) -> PipelineConfig:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def _override(section: dict, assignment: str) -> None:
    """Apply `a.b=value` (YAML value) to the nested dict `section`."""
    key, sep, value = assignment.partition("=")
    if not sep:
        raise ValueError(f"--set wants KEY=VALUE (e.g. beta.horizon=900), got {assignment!r}")
    *parents, leaf = key.split(".")
    for name in parents:
        section = section.setdefault(name, {})
    section[leaf] = yaml.safe_load(value)


def offline_queries(run_dir: Path, cfg: PipelineConfig) -> dict:
    """The offline collection replayed: teacher queries (every step) and the steps it stored.

    The same teachers, seeds and episode rule as the collect stage; the stored count must
    equal the run's ledger, which proves the replay ran the same episodes.
    """
    fam = get_family(cfg.family)
    queried = stored = 0
    for i, task in enumerate(cfg.tasks):
        teacher = load_teacher(teacher_file(run_dir, cfg.teachers.sources, task, cfg.family),
                               fam.obs_spec, fam.act_spec)
        env = make_env(cfg.family, task)
        try:
            for e in range(cfg.collect.episodes_per_task):
                ep = run_episode(env, teacher.act, episode_seed(cfg.seed, i, e))
                queried += len(ep.act)
                stored += len(ep.act) if ep.success or cfg.collect.keep == "all" else 0
        finally:
            env.close()
    ledger = json.loads((run_dir / "run.json").read_text())["stages"]["collect"]["total_steps"]
    if stored != ledger:
        raise RuntimeError(f"replaying {run_dir}'s collection stored {stored} steps, its ledger "
                           f"says {ledger}: the teachers or the code differ from that run's")
    return {"queried": queried, "stored": stored}


def _means(rows: list[dict], who: str) -> dict:
    """Mean of column `who` per split, over the rows that have it."""
    values = {split: [r[who] for r in rows if r["split"] == split and r[who] is not None]
              for split in ("seen", "held-out")}
    return {split: float(np.mean(v)) for split, v in values.items() if v}


def dagger_run(args: argparse.Namespace, src: Path, offline: PipelineConfig, seed: int,
               folder: Path) -> dict:
    """DAgger from scratch with copies of `src`'s teachers; its figures and eval rows."""
    data = yaml.safe_load(args.config.read_text())
    data["seed"] = seed
    for assignment in args.set:
        _override(data.setdefault("dagger", {}), assignment)
    cfg = _load(data, folder / "config.yaml")
    if (cfg.family, cfg.tasks, cfg.held_out, cfg.eval.seed) != (
            offline.family, offline.tasks, offline.held_out, offline.eval.seed):
        raise ValueError(f"{args.config} must have the family, tasks, held_out and eval.seed "
                         f"of {src}'s config to compare on the same objects and episodes")
    shutil.copytree(src / "teachers", folder / "run" / "teachers")
    started = time.monotonic()
    run = run_stages(cfg, folder / "run", list(get_algorithm("dagger").stages()))
    wall = time.monotonic() - started
    distill = json.loads((run.root / "run.json").read_text())["stages"]["distill"]
    rows = evaluate_rows(run, cfg, cfg.tasks + cfg.held_out, args.episodes, with_teachers=False)
    return {"seed": seed, "teacher_queries": distill["teacher_queries"],
            "rounds": distill["rounds"], "dagger_wall_s": distill["dagger_wall_s"],
            "pipeline_wall_s": round(wall, 1), "success": _means(rows, "student"),
            "per_task": {r["task"]: r["student"] for r in rows}}


def grasp(args: argparse.Namespace) -> dict:
    """Teachers, offline student and DAgger (each seed) on the same episodes; the criteria."""
    if args.run_dir is None or not (args.run_dir / "run.json").is_file():
        raise FileNotFoundError(f"--run-dir {args.run_dir} holds no finished run (run.json); "
                                "give a finished grasp_quick run, e.g. runs/grasp_quick")
    src = args.run_dir.resolve()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_dagger_grasp_"))
    offline = _load(json.loads((src / "run.json").read_text())["config"],
                    out / "offline_config.yaml")
    order = offline.tasks + offline.held_out
    rows = evaluate_rows(SimpleNamespace(root=src), offline, order, args.episodes)
    queries = offline_queries(src, offline)
    runs = [dagger_run(args, src, offline, seed, out / f"dagger_seed{seed}")
            for seed in args.seeds]
    teacher, student = _means(rows, "teacher")["seen"], _means(rows, "student")
    dagger = {split: float(np.mean([r["success"][split] for r in runs]))
              for split in ("seen", "held-out")}
    used = float(np.mean([r["teacher_queries"] for r in runs]))
    return {
        "family": offline.family, "run_dir": str(src), "config": str(args.config),
        "overrides": args.set, "episodes_per_task": args.episodes,
        "teachers": {"per_task": {r["task"]: r["teacher"] for r in rows if r["teacher"]
                                  is not None}, "mean_seen": teacher},
        "offline": {"success": student, "per_task": {r["task"]: r["student"] for r in rows},
                    "teacher_queries": queries},
        "dagger": {"success_mean_over_seeds": dagger, "teacher_queries_mean": used,
                   "runs": runs},
        "criteria": {
            "seen_over_teacher_mean": dagger["seen"] / teacher if teacher else float("nan"),
            "seen_met": dagger["seen"] >= 0.9 * teacher,
            "held_out_dagger_minus_offline": dagger["held-out"] - student["held-out"],
            "held_out_met": dagger["held-out"] >= student["held-out"],
            "queries_over_offline_queried": used / queries["queried"],
            "queries_over_offline_stored": used / queries["stored"],
            "queries_met_vs_queried": used <= 0.5 * queries["queried"],
            "queries_met_vs_stored": used <= 0.5 * queries["stored"],
        },
    }

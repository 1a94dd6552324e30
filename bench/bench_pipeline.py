"""Pipeline benchmark: per-stage wall time, env steps/s, teacher and student success per object.

Usage:
    python bench/bench_pipeline.py                        # runs config/grasp_quick.yaml fresh
    python bench/bench_pipeline.py --run-dir runs/grasp_full --config config/grasp_full.yaml
        (reads a finished run's figures instead of running it again)

Prints one JSON object. Speeds are measured in this process, so compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill_ros.config import load_config  # noqa: E402
from distill_ros.pipeline import run_stages  # noqa: E402
from distill_ros.rundir import STAGES  # noqa: E402
from distill_ros.tasks.base import make_env  # noqa: E402


def env_steps_per_second(family: str, task: str, steps: int = 3000) -> float:
    """Physics + observation throughput of one env under random actions."""
    env = make_env(family, task)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps):
        *_, truncated, _ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        if truncated:
            env.reset()
    rate = steps / (time.perf_counter() - started)
    env.close()
    return rate


def main() -> None:
    """Run (or read) the pipeline and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/grasp_quick.yaml")
    parser.add_argument("--run-dir", help="existing or new run folder (default: a temp dir)")
    args = parser.parse_args()
    cfg = load_config(args.config)
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="bench_pipeline_"))
    run = run_stages(cfg, run_dir, list(STAGES))
    ledger = json.loads((run.root / "run.json").read_text())
    report = json.loads((run.root / "report" / "eval.json").read_text())
    print(json.dumps({
        "config": args.config, "run_dir": str(run.root),
        "torch_threads": torch.get_num_threads(),  # config `threads` or $DISTILL_ROS_THREADS
        "stage_wall_s": {s: ledger["stages"][s].get("wall_s") for s in STAGES},
        "env_steps_per_s": {t: round(env_steps_per_second(cfg.family, t), 1)
                            for t in cfg.tasks[:3]},
        "teacher_success": {r["task"]: r["teacher"] for r in report["per_task"]},
        "student_success": {r["task"]: r["student"] for r in report["per_task"]},
        "student_success_95ci": {r["task"]: r.get("student_ci") for r in report["per_task"]},
        "summary": report["summary"],
    }, indent=2))


if __name__ == "__main__":
    main()

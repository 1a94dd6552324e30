"""The multi-mode student against specialists on their own modes, start by start, with noise.

`bench_humanoid_distill.py` compares the eval stage's values (24 starts): one fall there is
4% of a fall rate, and a joint error of .172 against .170 counts as a loss. This bench
re-runs finished students on more starts (`--episodes`; the eval stage's first, then new
ones) and, per clip and metric, puts a 95% interval on the difference from a paired
bootstrap over the starts (both policies start from the same reference states):

- `strict`: the multi-mode student matches or beats the specialist on the value itself;
- `verdict`: `beats` / `loses` when the interval excludes 0 on that side, else `matches`.

Prints one JSON object: per specialist mode and clip, the five metrics (fall rate, reward,
MPJPE, joint-angle and root-velocity errors) of both, their differences and verdicts; per
specialist, over its clips, the metrics matched or beaten strictly and not worse beyond
noise (`not_worse`), at `--episodes` starts and at the eval stage's first starts. The same
JSON and a plot of the differences with their intervals go to `--out` (versus.json,
versus.png; default `<multi run>/report/versus/`).

    OPENBLAS_NUM_THREADS=1 python bench/bench_humanoid_versus.py \
        --config config/humanoid_finetune.yaml --multi runs/humanoid_finetune \
        --specialist upper_joints_root_velocity=runs/SPECIALIST_RUN [--episodes 96]

(`bench_humanoid_distill.py` names a specialist's run `<config name>_specialist_<mode>`.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one thread per worker

from distill_ros.atomic import atomic_write_json  # noqa: E402
from distill_ros.config import load_config  # noqa: E402
from distill_ros.executor import stage_executor  # noqa: E402
from distill_ros.progress import stdout_to_stderr  # noqa: E402
from distill_ros.rollout import episode_seed  # noqa: E402
from distill_ros.tasks.base import make_env  # noqa: E402
from distill_ros.tasks.humanoid.commands import MODES  # noqa: E402
from distill_ros.tasks.humanoid.evaluate import (METRICS, episode_metrics,  # noqa: E402
                                                 paired_comparison, student_act)
from distill_ros.tasks.humanoid.hover import GROUPS  # noqa: E402
from distill_ros.tasks.humanoid.report import plot_paired  # noqa: E402

CHUNK = 24   # starts per job: the work spreads over the workers


@dataclass(frozen=True)
class Job:
    """Starts `first` .. `first + count - 1` of one student on one clip, one mode pinned."""

    family: str
    policy: str             # "multi-mode" or "specialist"
    onnx: str
    clip: str
    clip_index: int
    mode: str
    first: int
    count: int
    seed: int


def run_job(job: Job) -> dict:
    """The job's episodes, start by start (`episode_metrics` sums and counts)."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    act = student_act(OnnxPolicy(Path(job.onnx), want_gpu=False))
    env = make_env(job.family, job.clip, groups=GROUPS)
    try:
        episodes = [episode_metrics(env, act, episode_seed(job.seed, job.clip_index, ep),
                                    job.mode)
                    for ep in range(job.first, job.first + job.count)]
    finally:
        env.close()
    return {"policy": job.policy, "clip": job.clip, "mode": job.mode, "first": job.first,
            "episodes": episodes}


def _onnx(p: argparse.ArgumentParser, run: Path, config: str) -> str:
    onnx = run / "export" / "policy.onnx"
    if not onnx.is_file():
        p.error(f"{onnx} does not exist: finish the run first (distill-ros run {config} "
                f"--run-dir {run})")
    return str(onnx)


def _count(cells: list[dict], key: str) -> int:
    return sum(c[key] for c in cells)


def main(argv: list[str] | None = None) -> int:
    """Re-run the students on the same starts; print the paired comparison as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/humanoid_finetune.yaml",
                   help="the multi-mode student's config (family, clips, eval seed)")
    p.add_argument("--multi", required=True, help="the multi-mode student's finished run")
    p.add_argument("--specialist", action="append", default=[], metavar="MODE=RUN",
                   help="a specialist's mode and finished run; repeat for more")
    p.add_argument("--clips", default="", help="comma-separated seen clips (default: all)")
    p.add_argument("--episodes", type=int, default=96, help="starts per clip and policy")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap draws")
    p.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--out", default="", help="folder for versus.json and versus.png "
                   "(default: <multi>/report/versus)")
    args = p.parse_args(argv)
    cfg = load_config(Path(args.config))
    if args.episodes < 2:
        p.error(f"--episodes must be at least 2 starts per clip, got {args.episodes}")
    if not args.specialist:
        p.error("name at least one --specialist MODE=RUN (e.g. upper_joints_root_velocity="
                "runs/humanoid_finetune_specialist_upper_joints_root_velocity)")
    specialists = {}
    for item in args.specialist:
        mode, _, run = item.partition("=")
        if mode not in MODES or not run:
            p.error(f"--specialist must be MODE=RUN with MODE one of {', '.join(MODES)}; "
                    f"got {item!r}")
        specialists[mode] = _onnx(p, Path(run), args.config)
    multi = _onnx(p, Path(args.multi), args.config)
    clips = args.clips.split(",") if args.clips else list(cfg.tasks)
    if unknown := [c for c in clips if c not in cfg.tasks + cfg.held_out]:
        p.error(f"--clips: {unknown} are not clips of {args.config} "
                f"({cfg.tasks + cfg.held_out})")
    index = {c: (cfg.tasks + cfg.held_out).index(c) for c in clips}
    jobs = [Job(family=cfg.family, policy=who, onnx=onnx, clip=c, clip_index=index[c],
                mode=mode, first=first, count=min(CHUNK, args.episodes - first),
                seed=cfg.eval.seed)
            for mode, spec in specialists.items() for c in clips
            for who, onnx in (("multi-mode", multi), ("specialist", spec))
            for first in range(0, args.episodes, CHUNK)]
    started = time.perf_counter()
    # pybullet prints to fd 1, here and in the workers; the workers stop with the block
    with stdout_to_stderr(), stage_executor(None, processes=args.processes) as executor:
        results = executor.map(run_job, jobs, label="episodes")
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for r in sorted(results, key=lambda r: r["first"]):
        runs.setdefault((r["policy"], r["clip"], r["mode"]), []).extend(r["episodes"])
    short = min(cfg.eval.episodes, args.episodes)
    out = {"config": args.config, "multi": args.multi, "episodes": args.episodes,
           "eval_stage_episodes": short, "resamples": args.resamples,
           "wall_s": round(time.perf_counter() - started, 1), "specialists": {}}
    for mode in specialists:
        cells = {}
        for c in clips:
            mine, theirs = runs["multi-mode", c, mode], runs["specialist", c, mode]
            cells[c] = {
                "all": paired_comparison(mine, theirs, args.resamples, cfg.eval.seed),
                "eval_stage": paired_comparison(mine[:short], theirs[:short],
                                                args.resamples, cfg.eval.seed)}
        total = len(METRICS) * len(clips)
        out["specialists"][mode] = {
            "clips": cells, "metrics": total,
            "strict": _count([c["all"] for c in cells.values()], "strict"),
            "not_worse": _count([c["all"] for c in cells.values()], "not_worse"),
            "eval_stage_strict": _count([c["eval_stage"] for c in cells.values()], "strict"),
            "eval_stage_not_worse": _count([c["eval_stage"] for c in cells.values()],
                                           "not_worse")}
    folder = Path(args.out) if args.out else Path(args.multi) / "report" / "versus"
    atomic_write_json(folder / "versus.json", out)
    plot_paired(out["specialists"], folder / "versus.png")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

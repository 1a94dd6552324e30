"""Our humanoid env against pybullet's own DeepMimic env: imitation reward and speed per clip.

For each clip with a shipped DeepMimic policy and each seed, the policy runs from the same
start (pybullet's seeded reference-state initialisation) in pybullet's env and in ours, and
the mean imitation reward over the episode is compared. Ours is run with both reward variants
(`pybullet`: reference joint velocities read as zero, as pybullet's port does; `deepmimic`:
the clip's joint velocities). Also printed: control steps per second of each env, one thread.

    python bench/bench_humanoid.py [--clips walk,jump,spinkick,backflip --seeds 3 --steps 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

from distill_ros.tasks.humanoid.env import HumanoidImitationEnv
from distill_ros.tasks.humanoid.pybullet_reference import (make_reference_env,
                                                           reference_start_time, run_reference)
from distill_ros.teachers.deepmimic import DeepMimicTeacher


def run_ours(clip: str, teacher, start: float, steps: int, variant: str) -> tuple[list, bool]:
    """One episode of ours from `start`: per-step rewards and whether it fell."""
    env = HumanoidImitationEnv(clip, reward_variant=variant)
    obs, _ = env.reset(options={"start_time": start})
    rewards, fell = [], False
    for _ in range(steps):
        obs, r, fell, _, _ = env.step(teacher.act(obs))
        rewards.append(r)
        if fell:
            break
    env.close()
    return rewards, fell


def compare_clip(clip: str, seeds: int, steps: int) -> dict:
    """Per-seed rewards, falls and speeds for one clip."""
    teacher = DeepMimicTeacher.for_clip(clip)
    ref = make_reference_env(clip)
    rows, ref_time, ours_time, ref_steps, ours_steps = [], 0.0, 0.0, 0, 0
    for seed in range(seeds):
        t0 = time.perf_counter()
        ref_r, ref_fell = run_reference(ref, teacher, seed, steps)
        t1 = time.perf_counter()
        start = reference_start_time(ref, seed)
        ours_r, fell = run_ours(clip, teacher, start, steps, "pybullet")
        t2 = time.perf_counter()
        dm_r, dm_fell = run_ours(clip, teacher, start, steps, "deepmimic")
        ref_time, ours_time = ref_time + t1 - t0, ours_time + t2 - t1
        ref_steps, ours_steps = ref_steps + len(ref_r), ours_steps + len(ours_r)
        rows.append({"seed": seed, "start_time": round(start, 4),
                     "reference": {"reward": round(float(np.mean(ref_r)), 4),
                                   "steps": len(ref_r), "fell": ref_fell},
                     "ours_pybullet_variant": {"reward": round(float(np.mean(ours_r)), 4),
                                               "steps": len(ours_r), "fell": fell},
                     "ours_deepmimic_variant": {"reward": round(float(np.mean(dm_r)), 4),
                                                "steps": len(dm_r), "fell": dm_fell},
                     "abs_diff_pybullet_variant": round(abs(np.mean(ours_r) - np.mean(ref_r)), 4)})
    ref._pybullet_client.disconnect()
    return {"episodes": rows,
            "max_abs_diff_pybullet_variant": max(r["abs_diff_pybullet_variant"] for r in rows),
            "steps_per_s": {"reference": round(ref_steps / ref_time, 1),
                            "ours": round(ours_steps / ours_time, 1)}}


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to fd 1 (pybullet's C++ and the reference's prints) to fd 2."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, compare every clip, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="walk,jump,spinkick,backflip")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="control steps (30 Hz)")
    args = parser.parse_args(argv)
    with stdout_to_stderr():
        clips = {c: compare_clip(c, args.seeds, args.steps) for c in args.clips.split(",")}
    out = {"steps": args.steps, "control_hz": 30, "sim_hz": 240, "clips": clips}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Our humanoid env against pybullet's own DeepMimic env: imitation reward and speed per clip.

For each clip with a shipped DeepMimic policy and each seed, the policy runs from the same
start (pybullet's seeded reference-state initialisation) in pybullet's env and in ours, and
the mean imitation reward over the episode is compared. Ours is run with both reward variants
(`pybullet`: reference joint velocities read as zero, as pybullet's port does; `deepmimic`:
the clip's joint velocities). Also printed: control steps per second of each env, with the
policy's own time left out.

    python bench/bench_humanoid.py [--clips walk,jump,spinkick,backflip --seeds 3 --steps 300]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from distill_ros.progress import stdout_to_stderr
from distill_ros.tasks.humanoid.env import HumanoidImitationEnv, rollout
from distill_ros.tasks.humanoid.pybullet_reference import (make_reference_env,
                                                           reference_start_time, run_reference)
from distill_ros.teachers.deepmimic import DeepMimicTeacher


class TimedPolicy:
    """A policy that adds the seconds it spends to `seconds`, to time the env alone."""

    def __init__(self, teacher) -> None:
        self.teacher, self.seconds = teacher, 0.0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The teacher's action, timed."""
        t0 = time.perf_counter()
        out = self.teacher.act(obs)
        self.seconds += time.perf_counter() - t0
        return out


def compare_clip(clip: str, seeds: int, steps: int) -> dict:
    """Per-seed rewards, falls and speeds for one clip."""
    teacher = DeepMimicTeacher.for_clip(clip)
    ref = make_reference_env(clip)
    ours = {v: HumanoidImitationEnv(clip, reward_variant=v) for v in ("pybullet", "deepmimic")}
    rows, ref_t, ours_t, ref_n, ours_n = [], 0.0, 0.0, 0, 0
    for seed in range(seeds):
        ref_policy, ours_policy = TimedPolicy(teacher), TimedPolicy(teacher)
        t0 = time.perf_counter()
        ref_r, ref_fell = run_reference(ref, ref_policy, seed, steps)
        t1 = time.perf_counter()
        start = reference_start_time(ref, seed)
        ours_r, fell = rollout(ours["pybullet"], ours_policy.act, start, steps)
        t2 = time.perf_counter()
        dm_r, dm_fell = rollout(ours["deepmimic"], teacher.act, start, steps)
        ref_t += t1 - t0 - ref_policy.seconds
        ours_t += t2 - t1 - ours_policy.seconds
        ref_n, ours_n = ref_n + len(ref_r), ours_n + len(ours_r)
        diff = abs(float(np.mean(ours_r) - np.mean(ref_r)))
        rows.append({"seed": seed, "start_time": round(start, 4),
                     "reference": _summary(ref_r, ref_fell),
                     "ours_pybullet_variant": _summary(ours_r, fell),
                     "ours_deepmimic_variant": _summary(dm_r, dm_fell),
                     "abs_diff_pybullet_variant": round(diff, 4)})
    ref._pybullet_client.disconnect()
    for env in ours.values():
        env.close()
    return {"episodes": rows,
            "max_abs_diff_pybullet_variant": max(r["abs_diff_pybullet_variant"] for r in rows),
            "env_steps_per_s_without_policy": {"reference": round(ref_n / ref_t, 1),
                                               "ours": round(ours_n / ours_t, 1)}}


def _summary(rewards: list[float], fell: bool) -> dict:
    return {"reward": round(float(np.mean(rewards)), 4), "steps": len(rewards), "fell": fell}


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

"""Dressing family figures: physics speed, point-cloud cost, and the scripted expert's ratio.

- ``physics_steps_per_s`` (wall) and ``physics_steps_per_cpu_s`` (this process's CPU time,
  steadier on a shared machine): pybullet steps per second of the dressing world (a
  132-vertex garment anchored to the gripper, arm contacts read every step), from control
  steps with the state observation only;
- ``points_ms``: camera render + preprocessing per control step (p50, p99), and
  ``preprocess_ms`` the preprocessing alone at N points;
- ``expert``: the scripted expert's final dressed ratio and success per pose range (training
  and held out), garments drawn per seed, and on the held-out garment;
- ``tick_ms``: what the node does per control tick on CPU with a point-cloud student at N
  points: preprocess the labelled cloud (crop, voxels, N points) and run the ONNX policy
  through the runtime (`OnnxPolicy`), p50 and p99; ``bare_ort_ms``: the same model's
  `InferenceSession.run` alone on the same inputs. The model is the run's export
  (``--policy``) or, by default, an untrained PointNet student of the same shape.

    flock /work/bench.lock python bench/bench_dressing.py [--seeds 2 --points 512]
    [--policy runs/dressing_quick/export/policy.onnx]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from distill_ros.runtime.pointcloud import preprocess
from distill_ros.tasks.dressing.env import (CONTROL_RATE_HZ, EPISODE_STEPS, SUBSTEPS,
                                            DressingEnv)
from distill_ros.tasks.dressing.expert import expert_action
from distill_ros.tasks.dressing.family import TASKS


def run_expert(task: str, seed: int) -> dict:
    """One full episode of the expert (no early stop): final ratio, success, peak force, time."""
    env = DressingEnv(task)
    try:
        obs, _ = env.reset(seed=seed)
        t0, cpu0, peak = time.perf_counter(), time.process_time(), 0.0
        for _ in range(EPISODE_STEPS):
            obs, _, _, _, info = env.step(expert_action(obs))
            peak = max(peak, info["arm_force"])
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return {"task": task, "seed": seed, "garment": env.garment.name,
                "ratio": round(info["dressed_ratio"], 3), "success": bool(info["is_success"]),
                "peak_arm_force_n": round(peak, 2),
                "physics_steps_per_s": round(EPISODE_STEPS * SUBSTEPS / wall, 1),
                "physics_steps_per_cpu_s": round(EPISODE_STEPS * SUBSTEPS / cpu, 1)}
    finally:
        env.close()


def _pct(xs: list) -> dict:
    return {"p50": round(float(np.percentile(xs, 50)), 3),
            "p99": round(float(np.percentile(xs, 99)), 3)}


def points_cost(n_points: int, steps: int = 30) -> dict:
    """Per-step time of render + preprocess, and of preprocess alone (ms)."""
    env = DressingEnv("f1e0", groups=("state",), n_points=n_points)
    try:
        obs, _ = env.reset(seed=0)
        preprocess(env.point_cloud(), env.cloud)       # imports open3d: not part of a tick
        both, alone = [], []
        for _ in range(steps):
            obs, *_ = env.step(expert_action(obs["state"]))
            t0 = time.perf_counter()
            raw = env.point_cloud()
            t1 = time.perf_counter()
            preprocess(raw, env.cloud)
            t2 = time.perf_counter()
            both.append((t2 - t0) * 1e3)
            alone.append((t2 - t1) * 1e3)
        return {"n_points": n_points, "raw_points": int(len(raw)), "points_ms": _pct(both),
                "preprocess_ms": _pct(alone)}
    finally:
        env.close()


def default_policy(path: Path, n_points: int) -> Path:
    """An untrained points + proprio student (the quick config's) exported to `path`."""
    import torch

    from distill_ros.config import load_config
    from distill_ros.export.metadata import PolicyMetadata
    from distill_ros.export.onnx_export import export_student
    from distill_ros.spec import ObsSpec
    from distill_ros.students.factory import build_student
    from distill_ros.tasks.dressing.family import ACT_SPEC, FAMILY, obs_groups

    torch.manual_seed(0)
    groups = {g.name: g for g in obs_groups(n_points).groups}
    spec = ObsSpec((groups["points"], groups["proprio"]))
    config = load_config(Path(__file__).resolve().parents[1] / "config" / "dressing_quick.yaml")
    student = build_student(config.student, spec, ACT_SPEC,
                            frame_vectors=FAMILY.act_frame_vectors)
    export_student(student, path, PolicyMetadata(spec, ACT_SPEC, CONTROL_RATE_HZ, "dressing"))
    return path


def tick_cost(policy_path: Path, ticks: int = 200) -> dict:
    """Per-tick preprocessing + runtime inference, and bare ORT on the same inputs (ms)."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(policy_path, want_gpu=False)
    n_points = policy.groups.input_shapes()["points"][0]
    env = DressingEnv("f1e0", groups=("state", "proprio"), n_points=n_points)
    try:
        obs, _ = env.reset(seed=0)
        frames = []
        for _ in range(10):              # clouds as the camera sees them along an episode
            frames.append((env.point_cloud(), obs["proprio"]))
            obs, *_ = env.step(expert_action(obs["state"]))
    finally:
        env.close()
    preprocess(frames[0][0], env.cloud)  # imports open3d: not part of a tick
    tick, bare, feeds = [], [], []
    for k in range(ticks):
        raw, proprio = frames[k % len(frames)]
        t0 = time.perf_counter()
        feed = {"points": preprocess(raw, env.cloud)[None], "proprio": proprio[None]}
        policy.act(feed)
        tick.append((time.perf_counter() - t0) * 1e3)
        feeds.append(feed)
    for feed in feeds:
        t0 = time.perf_counter()
        policy.session.run(None, feed)
        bare.append((time.perf_counter() - t0) * 1e3)
    return {"policy": str(policy_path), "tick_points": n_points, "tick_ms": _pct(tick),
            "bare_ort_ms": _pct(bare), "providers": policy.providers}


def main() -> None:
    """Print the figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2,
                        help="expert episodes per pose range (0: per-tick figures only)")
    parser.add_argument("--points", type=int, default=512)
    parser.add_argument("--policy", type=Path, default=None,
                        help="a points + proprio ONNX student (default: an untrained one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        policy = args.policy or default_policy(Path(tmp) / "student.onnx", args.points)
        ticks = tick_cost(policy)
    out = {**points_cost(args.points), **ticks}
    rows = [run_expert(t, s) for t in TASKS if "@" not in t or t.startswith("f0e1")
            for s in range(args.seeds)]
    if rows:       # --seeds 0: the per-tick figures only
        out = {**{k: float(np.median([r[k] for r in rows]))
                  for k in ("physics_steps_per_s", "physics_steps_per_cpu_s")}, **out,
               "expert_mean_ratio": round(float(np.mean([r["ratio"] for r in rows])), 3),
               "expert_success_rate": float(np.mean([r["success"] for r in rows])),
               "expert": rows}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""A toy-family student reading a point cloud and a masked command, trained in seconds.

The teacher is the toy family's analytic expert reading privileged groups (``proprio``: the
mass position, plus the command); the student reads only ``points`` (the mass is seen
through the cloud's label-0 points) and the masked ``command``. Shared by the distillation
test and the node test, so both run the same student.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distill_ros.config import StudentConfig
from distill_ros.distill.behavior_cloning import Distillation
from distill_ros.distill.dataset import load_dataset, take, write_shard
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.export.onnx_export import export_student, parity_check
from distill_ros.rollout import Episode
from distill_ros.tasks.toy import ACT_SPEC, DT, TASKS, ToyEnv, expert_action, obs_groups

SPEC = obs_groups(("points", "command"))
READS = ("proprio", "points", "command")      # the env returns these; the student reads two
FIELDS = [{"name": c, "offset": 4 * i, "datatype": 7, "count": 1}
          for i, c in enumerate(("x", "y", "z", "label"))]


def toy_episode(task: str, seed: int, policy=None) -> Episode:
    """One episode; the expert acts unless `policy` (student groups -> action) is given."""
    env = ToyEnv(task, groups=READS, mask_prob=0.3)
    o, _ = env.reset(seed=seed)
    obs, act, success = [], [], False
    for _ in range(env.max_episode_steps):
        teacher = expert_action({k: v[None] for k, v in o.items()})[0]
        student_obs = {k: o[k] for k in SPEC.input_names}
        obs.append(student_obs)
        act.append(teacher)
        o, _, _, truncated, info = env.step(teacher if policy is None else policy(student_obs))
        success = info["is_success"]
        if truncated:
            break
    stacked = {k: np.stack([s[k] for s in obs]) for k in SPEC.input_names}
    return Episode(stacked, np.stack(act), success, seed)


def train_toy_student(root: Path, epochs: int = 25) -> dict:
    """Collect expert shards, train, export with a parity check; losses and paths back."""
    torch.manual_seed(0)
    for i, task in enumerate(TASKS):
        episodes = [toy_episode(task, 1000 * i + s) for s in range(10)]
        (root / "data" / task).mkdir(parents=True)
        write_shard(root / "data" / task / "shard_0000.npz", episodes, task, SPEC, ACT_SPEC,
                    "all")
    obs, act, _ = load_dataset(root / "data", list(TASKS), SPEC, ACT_SPEC)
    student = build_student_for(obs)
    algo = Distillation(student, 3e-3)
    tensors, target = {k: torch.from_numpy(v) for k, v in obs.items()}, torch.from_numpy(act)
    first = algo.evaluate(tensors, target)
    for _ in range(epochs):
        for batch in torch.randperm(len(target)).split(256):
            algo.update(take(tensors, batch), target[batch])
    path = root / "policy.onnx"
    export_student(student.eval(), path, PolicyMetadata(SPEC, ACT_SPEC, 1.0 / DT, "toy"))
    parity = parity_check(student, path, obs, tol=1e-4)
    return {"obs": obs, "act": act, "first_loss": first,
            "final_loss": algo.evaluate(tensors, target), "path": path, "parity": parity}


def build_student_for(obs: dict):
    """The MLP student over the toy groups, its normalisers fitted to `obs`."""
    from distill_ros.students.factory import build_student

    student = build_student(StudentConfig(hidden=[128, 128]), SPEC, ACT_SPEC)
    student.set_normalizer(obs)
    return student

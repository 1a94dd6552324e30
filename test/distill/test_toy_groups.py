"""A student reading a point cloud and a masked command learns the toy family and exports.

The teacher is the toy family's analytic expert reading privileged groups (``proprio``:
the mass position, plus the command); the student reads only ``points`` (the mass is
seen through the cloud's label-0 points) and the masked ``command``. Shards, training,
export and the run-time path from PointCloud2 bytes all go through the grouped spec.
"""

import numpy as np
import torch

from distill_ros.config import StudentConfig
from distill_ros.distill.behavior_cloning import Distillation
from distill_ros.distill.dataset import load_dataset, take, write_shard
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.export.onnx_export import export_student, parity_check
from distill_ros.rollout import Episode
from distill_ros.runtime.observation import command_from_arrays, points_from_cloud
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.students.factory import build_student
from distill_ros.tasks.toy import (ACT_SPEC, DT, N_POINTS, TASKS, ToyEnv, expert_action,
                                   obs_groups)

SPEC = obs_groups(("points", "command"))
READS = ("proprio", "points", "command")      # the env returns these; the student reads two
FIELDS = [{"name": c, "offset": 4 * i, "datatype": 7, "count": 1}
          for i, c in enumerate(("x", "y", "z", "label"))]


def _episode(task, seed, policy=None):
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


def test_points_and_command_student_learns_the_toy_family_and_exports(tmp_path):
    torch.manual_seed(0)
    for i, task in enumerate(TASKS):
        episodes = [_episode(task, 1000 * i + s) for s in range(10)]
        (tmp_path / "data" / task).mkdir(parents=True)
        write_shard(tmp_path / "data" / task / "shard_0000.npz", episodes, task, SPEC, ACT_SPEC,
                    "all")
    obs, act, _ = load_dataset(tmp_path / "data", list(TASKS), SPEC, ACT_SPEC)
    assert set(obs) == {"points", "command", "command_mask"} and len(act) == 3200

    student = build_student(StudentConfig(hidden=[128, 128]), SPEC, ACT_SPEC)
    student.set_normalizer(obs)
    algo = Distillation(student, 3e-3)
    tensors, target = {k: torch.from_numpy(v) for k, v in obs.items()}, torch.from_numpy(act)
    first = algo.evaluate(tensors, target)
    for _ in range(25):
        for batch in torch.randperm(len(target)).split(256):
            algo.update(take(tensors, batch), target[batch])
    final = algo.evaluate(tensors, target)
    assert final < 0.1 * first, f"loss {first:.4f} -> {final:.4f}"

    path = tmp_path / "policy.onnx"
    export_student(student.eval(), path, PolicyMetadata(SPEC, ACT_SPEC, 1.0 / DT, "toy"))
    parity = parity_check(student, path, obs, tol=1e-4)
    assert parity["max_abs_diff_random"] <= 1e-4 and parity["max_abs_diff_real"] <= 1e-4
    policy = OnnxPolicy(path, want_gpu=False)
    assert [i.name for i in policy.session.get_inputs()] == ["points", "command",
                                                             "command_mask"]

    def from_messages(o):
        """The node's path: PointCloud2 bytes and a values/mask pair -> the policy."""
        cloud = points_from_cloud(SPEC.group("points"), FIELDS, 16,
                                  o["points"].astype("<f4").tobytes(), width=N_POINTS)
        cmd = command_from_arrays(SPEC.group("command"), o["command"], o["command_mask"])
        return policy.act({"points": cloud, **cmd})

    results = [_episode(task, 99_000 + k, from_messages).success for task in TASKS
               for k in range(3)]
    teacher = [_episode(task, 99_000 + k).success for task in TASKS for k in range(3)]
    assert np.mean(teacher) == 1.0
    assert np.mean(results) >= 0.9, f"student success {np.mean(results):.2f} from messages"

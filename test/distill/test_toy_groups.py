"""A student reading a point cloud and a masked command learns the toy family and exports.

Shards, training, export and the run-time path from PointCloud2 bytes all go through the
grouped spec (the student and its data: ``test/runtime/toy_student.py``).
"""

import numpy as np

from distill_ros.runtime.observation import command_from_arrays, points_from_cloud
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.tasks.toy import N_POINTS, TASKS
from runtime.toy_student import FIELDS, SPEC, toy_episode, train_toy_student


def test_points_and_command_student_learns_the_toy_family_and_exports(tmp_path):
    trained = train_toy_student(tmp_path)
    obs, act = trained["obs"], trained["act"]
    assert set(obs) == {"points", "command", "command_mask"} and len(act) == 3200
    first, final = trained["first_loss"], trained["final_loss"]
    assert final < 0.1 * first, f"loss {first:.4f} -> {final:.4f}"
    parity, path = trained["parity"], trained["path"]
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

    results = [toy_episode(task, 99_000 + k, from_messages).success for task in TASKS
               for k in range(3)]
    teacher = [toy_episode(task, 99_000 + k).success for task in TASKS for k in range(3)]
    assert np.mean(teacher) == 1.0
    assert np.mean(results) >= 0.9, f"student success {np.mean(results):.2f} from messages"

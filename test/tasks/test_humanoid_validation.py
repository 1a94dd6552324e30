"""The humanoid's validation score, which `dagger.keep: best` ranks DAgger's students by."""

import numpy as np
import torch

from distill_ros.distill.dagger.envs import group_spec
from distill_ros.students.config import StudentConfig
from distill_ros.students.factory import build_student
from distill_ros.tasks.base import get_family
from distill_ros.tasks.humanoid.commands import CommandSpace
from distill_ros.tasks.humanoid.evaluate import evaluate_policy
from distill_ros.tasks.humanoid.family import ACT_SPEC, OBS_SPEC


def test_validation_is_the_pinned_modes_imitation_reward_with_falls_counting_zero():
    torch.manual_seed(0)   # an untrained student: it falls within a second or so
    fam = get_family("humanoid")
    dim = CommandSpace().dim
    spec = group_spec({"proprio": (196,), "command": (dim,), "command_mask": (dim,)},
                      OBS_SPEC, fam.obs_groups)
    student = build_student(StudentConfig(hidden=[16]), spec, ACT_SPEC).eval()
    score = fam.validate("humanoid", ["walk", "jump"], student, 5, 2)

    def act(groups):
        return student.act({k: groups[k][None] for k in spec.input_names})[0]
    rows = [evaluate_policy("humanoid", clip, i, act, ("full",), 2, 5)[0]
            for i, clip in enumerate(["walk", "jump"])]
    assert score == np.mean([r["reward"] for r in rows])
    assert all(r["fall_rate"] == 1.0 for r in rows) and 0.0 < score < 0.05
    flat = build_student(StudentConfig(hidden=[16]), OBS_SPEC, ACT_SPEC).eval()
    assert 0.0 < fam.validate("humanoid", ["walk"], flat, 5, 1) < 0.05   # reads the state
    specialist = get_family("distill_ros.tasks.humanoid.family:specialist_head_hands")
    assert specialist.validate.keywords["mode"] == "head_hands"

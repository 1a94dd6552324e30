"""A mode switch mid-episode (full command -> head and hands -> full) does not make a
DAgger-trained student fall on walk.

The student is trained here by DAgger from the shipped walk expert (6,400 labelled states,
about 40 s on a quiet core), with episodes that draw `full` or `head_hands` and switch
between them about every 2 s. It then walks 10 s from two starts, the mode pinned to `full`,
then `head_hands`, then `full` again.
"""

import functools

import numpy as np
import pytest

from distill_ros.distill.dagger.config import BetaConfig, DaggerConfig
from distill_ros.distill.dagger.envs import group_spec
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger, trained_student
from distill_ros.students.config import StudentConfig
from distill_ros.students.factory import build_student
from distill_ros.tasks.humanoid.family import ACT_SPEC, humanoid_family
from distill_ros.tasks.humanoid.hover import GROUPS
from distill_ros.teachers.deepmimic import DeepMimicTeacher

SCHEDULE = ((0, "full"), (100, "head_hands"), (200, "full"))  # control step -> mode
STUDENT_INPUTS = ("proprio", "command", "command_mask")


@pytest.fixture(scope="module")
def walk_student(tmp_path_factory):
    """A proprio + masked-command student distilled from the walk expert by DAgger."""
    family = humanoid_family("walk_switch", modes=("full", "head_hands"), sparsity=0.0,
                             switch_prob=1.0 / 60, mode_weights=None, whole_prob=0.0)
    cfg = DaggerConfig(n_envs=1, vector="sync", teacher_groups=["state"],
                       student_groups=["proprio", "command"],
                       beta=BetaConfig(schedule="linear", horizon=3200), rounds=16,
                       steps_per_round=400, updates_per_round=400, batch_size=256,
                       eval_every=1000, eval_episodes=1)

    def build(shapes):
        return build_student(StudentConfig(arch="mlp", hidden=[256, 256]),
                             group_spec(shapes, None, family.obs_groups), ACT_SPEC)

    job = DaggerJob(make_env=functools.partial(family.make, groups=GROUPS), tasks=["walk"],
                    build_student=build, load_teacher=DeepMimicTeacher.for_clip,
                    out_dir=tmp_path_factory.mktemp("switch"), seed=0)
    train_dagger(cfg, job)
    return family, trained_student(job.out_dir, build)


@pytest.mark.slow
@pytest.mark.parametrize("start_time", [0.0, 0.4])
def test_switching_full_to_hands_only_and_back_does_not_fall_on_walk(walk_student,
                                                                     start_time):
    family, student = walk_student
    env = family.make("walk", groups=GROUPS)
    obs, _ = env.reset(seed=0, options={"start_time": start_time, "mode": "full"})
    schedule = dict(SCHEDULE)
    rewards, shown = {m: [] for m in ("full", "head_hands")}, []
    for step in range(300):
        shown.append(int(obs["command_mask"].sum()))
        action = student.act({k: obs[k][None] for k in STUDENT_INPUTS})[0]
        if step + 1 in schedule:  # the next observation shows the new mode
            env.set_mode(schedule[step + 1])
        obs, reward, fell, truncated, info = env.step(action)
        assert not fell, f"fell at step {step} in mode {info['mode']} (start {start_time})"
        rewards[info["mode"]].append(reward)
    env.close()
    assert shown[99] == 51 and shown[100] == 9 and shown[200] == 51, "the mask did not switch"
    for mode, values in rewards.items():
        assert np.mean(values) > 0.4, f"{mode}: mean imitation reward {np.mean(values):.2f}"

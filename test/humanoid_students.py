"""A DAgger walk student shared by the humanoid tests, trained once per test run.

`walk_student` distils the shipped walk expert into a proprio + masked-command student
(4,000 labelled states, about 30 s on a quiet core; 16 rounds took 50 s and kept the same
three of four starts 0.4 s apart upright through the switches on seeds 0 and 1, one fewer
on seed 2, where 10 rounds kept three on all three seeds) with episodes that draw `full` or
`head_hands` and switch between them about every 2 s; the student is its weights' average
(`ema_decay` 0.99, as the humanoid configs): on a new machine the last weights of the same
seeded run fell at step 62 from the 0.4 s start, the average did not. It is
session-scoped, and where ``DISTILL_ROS_TEST_CACHE`` names a folder (``scripts/test.sh``
makes a fresh one for its two backend runs) the second run resumes the finished DAgger run
instead of training again: the same seed gives the same student either way.
"""

import functools
import hashlib
import os
from pathlib import Path

import pytest

from distill_ros.distill.dagger.config import BetaConfig, DaggerConfig
from distill_ros.distill.dagger.envs import group_spec
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger, trained_student
from distill_ros.students.config import StudentConfig
from distill_ros.students.factory import build_student
from distill_ros.tasks.humanoid.family import ACT_SPEC, humanoid_family
from distill_ros.tasks.humanoid.hover import GROUPS
from distill_ros.teachers.deepmimic import DeepMimicTeacher

CONFIG = DaggerConfig(n_envs=1, vector="sync", teacher_groups=["state"],
                      student_groups=["proprio", "command"],
                      beta=BetaConfig(schedule="linear", horizon=2000), rounds=10,
                      steps_per_round=400, updates_per_round=400, batch_size=256,
                      eval_every=1000, eval_episodes=1, ema_decay=0.99)
HIDDEN = [256, 256]


def _folder(tmp_path_factory) -> Path:
    """Where the DAgger run lives: the shared cache (keyed by its settings) or a tmp dir."""
    cache = os.environ.get("DISTILL_ROS_TEST_CACHE")
    if not cache:
        return tmp_path_factory.mktemp("walk_switch")
    key = hashlib.sha256(repr((CONFIG, HIDDEN)).encode()).hexdigest()[:12]
    return Path(cache) / f"walk_switch_{key}"


@pytest.fixture(scope="session")
def walk_student(tmp_path_factory):
    """(family, student): the walk student distilled by DAgger over two command modes."""
    family = humanoid_family("walk_switch", modes=("full", "head_hands"), sparsity=0.0,
                             switch_prob=1.0 / 60, mode_weights=None, whole_prob=0.0)

    def build(shapes):
        return build_student(StudentConfig(arch="mlp", hidden=HIDDEN),
                             group_spec(shapes, None, family.obs_groups), ACT_SPEC)

    job = DaggerJob(make_env=functools.partial(family.make, groups=GROUPS), tasks=["walk"],
                    build_student=build, load_teacher=DeepMimicTeacher.for_clip,
                    out_dir=_folder(tmp_path_factory), seed=0)
    train_dagger(CONFIG, job)  # resumes, here at its end, where the run is already done
    return family, trained_student(job.out_dir, build)

"""DAgger's rollout workers (`dagger.rollout_workers`): in this process or as Ray actors.

Each worker holds a slice of the toy envs, their teacher and a copy of the student; only the
weights go out and the transitions come back. One worker must reproduce the one-vector
loop (a process pool of envs) bit for bit, and two workers must give the same student as
Ray actors as they do here.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from distill_ros.config import StudentConfig
from distill_ros.distill.dagger.config import BetaConfig, DaggerConfig
from distill_ros.distill.dagger.envs import group_spec
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger
from distill_ros.distill.dagger.workers import slices_of
from distill_ros.students.factory import build_student
from distill_ros.tasks import toy

TASKS = list(toy.TASKS[:2])
STUDENT = ["proprio", "command"]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'distill_ros[ray]'")


class ToyExpert:
    """The toy's analytic expert on `state` (9) + `command` (3) + `command_mask` (3)."""

    def act(self, obs):
        return toy.expert_action(obs[:, :9]) * obs[:, 12:15]


def expert(task: str) -> ToyExpert:
    """Every task's teacher (the goal is in the privileged `state`)."""
    return ToyExpert()


def make(task: str):
    """A toy env with the teacher's and the student's groups."""
    return toy.ToyEnv(task, groups=("state", *STUDENT), mask_prob=0.3)


def student(shapes):
    """A small MLP student over the groups it reads."""
    return build_student(StudentConfig(hidden=[32, 32]), group_spec(shapes), toy.ACT_SPEC)


def run(out, beta: BetaConfig, workers: int, executor=None, queries: int = 0,
        noise: float = 0.0):
    """Four rounds of DAgger on 4 toy envs; its figures and the final student's weights."""
    cfg = DaggerConfig(n_envs=4, vector="async", rounds=4, steps_per_round=30,
                       updates_per_round=20, batch_size=64, eval_every=2, eval_episodes=2,
                       teacher_groups=["state", "command"], student_groups=STUDENT, beta=beta,
                       rollout_workers=workers, max_teacher_queries=queries,
                       action_noise=noise)
    job = DaggerJob(make_env=make, tasks=TASKS, build_student=student, load_teacher=expert,
                    out_dir=out, seed=3, executor=executor)
    figures = train_dagger(cfg, job)
    state = torch.load(out / "latest.pt", map_location="cpu", weights_only=False)
    return figures, state


def untimed(rows):
    """Figures without their wall-clock times."""
    return [{k: v for k, v in row.items() if not k.endswith("wall_s")} for row in rows]


def assert_same(a, b) -> None:
    (fa, sa), (fb, sb) = a, b
    assert untimed([fa]) == untimed([fb])
    assert untimed(sa["curves"]) == untimed(sb["curves"])
    assert sa["mixer"].keys() == sb["mixer"].keys()
    for key, value in sa["mixer"].items():
        assert np.array_equal(np.asarray(value, dtype=object), np.asarray(sb["mixer"][key],
                                                                          dtype=object)), key
    for key, value in sa["student"].items():
        assert torch.equal(value, sb["student"][key]), key
    for key, value in sa["buffer"]["obs"].items():
        assert np.array_equal(value, sb["buffer"]["obs"][key]), key
    assert np.array_equal(sa["buffer"]["mean"], sb["buffer"]["mean"])


def test_envs_are_cut_into_contiguous_slices_that_differ_by_at_most_one():
    assert slices_of(5, 2) == [slice(0, 2), slice(2, 5)]
    assert slices_of(4, 4) == [slice(k, k + 1) for k in range(4)]
    with pytest.raises(ValueError, match="between 1 and dagger.n_envs"):
        slices_of(4, 5)
    with pytest.raises(ValueError, match="rollout_workers needs β per step"):
        DaggerConfig(rollout_workers=2, beta=BetaConfig(per="episode"))


@pytest.mark.parametrize("beta", [
    BetaConfig(schedule="linear", start=1.0, end=0.0, horizon=300),
    BetaConfig(schedule="constant", per="episode", start=0.5),
    BetaConfig(schedule="on_demand", threshold=0.3, fail_steps=10)],
    ids=["per_step", "per_episode", "on_demand"])
def test_one_worker_is_the_one_vector_loop_bit_for_bit(tmp_path, beta):
    vector = run(tmp_path / "vector", beta, 0, queries=330)  # the budget ends round 3
    worker = run(tmp_path / "worker", beta, 1, queries=330)
    assert vector[0]["stopped_by_budget"] and vector[0]["rounds"] == 3
    assert_same(vector, worker)


def test_action_noise_is_drawn_per_env_so_a_worker_replays_the_vector_loop(tmp_path):
    beta = BetaConfig(schedule="linear", start=1.0, end=0.0, horizon=300)
    vector = run(tmp_path / "vector", beta, 0, noise=0.2)
    assert_same(vector, run(tmp_path / "worker", beta, 1, noise=0.2))
    clean = run(tmp_path / "clean", beta, 0)
    assert not np.array_equal(clean[1]["buffer"]["obs"]["proprio"],
                              vector[1]["buffer"]["obs"]["proprio"]), "the noise moved nothing"


@needs_ray
def test_two_ray_actors_train_the_student_two_workers_here_train(tmp_path, monkeypatch):
    import ray

    from distill_ros.executor import RayExecutor

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    beta = BetaConfig(schedule="linear", start=1.0, end=0.0, horizon=300)
    here = run(tmp_path / "here", beta, 2)
    executor = RayExecutor(local_cpus=2)
    try:
        executor._ray()
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack test/
        actors = run(tmp_path / "actors", beta, 2, executor)
    finally:
        executor.shutdown()
    assert_same(here, actors)
    assert here[0]["teacher_queries"] == 4 * 30 * 4

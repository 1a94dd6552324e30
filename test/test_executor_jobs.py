"""Teachers, collection and evaluation as executor jobs: the same files on every executor.

One toy run per executor with SB3 (PPO) teachers trained here on tiny budgets: every
teacher's weights and observation statistics, every shard and the eval table must be the
same bytes on serial, a 2-process pool and Ray (2 CPUs, embedded, loopback).
"""

from __future__ import annotations

import importlib.util
import json
import zipfile

import pytest
import yaml

from distill_ros.config import load_config
from distill_ros.executor import make_executor
from distill_ros.pipeline import run_stages
from distill_ros.rundir import STAGES

TASKS = ["goal_1", "goal_6"]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'distill_ros[ray]'")
#: the parts of an SB3 zip that hold what was learnt ("data" holds a wall-clock start time)
LEARNT = ("policy.pth", "policy.optimizer.pth", "pytorch_variables.pth")


def ppo_toy_config(folder, **overrides):
    """A toy run whose two teachers train here (PPO, 1024 steps) in seconds."""
    cfg = {"name": "jobs", "family": "toy", "tasks": TASKS, "seed": 5,
           "teachers": {"algo": "ppo", "timesteps": 1024, "n_envs": 2, "n_steps": 128,
                        "batch_size": 64, "checkpoint_every": 512, "eval_episodes": 3,
                        "net_arch": [32, 32]},
           "collect": {"episodes_per_task": 6, "shard_episodes": 3, "keep": "all"},
           "distill": {"epochs": 2}, "eval": {"episodes": 3}, **overrides}
    path = folder / "jobs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    cfg = ppo_toy_config(tmp_path_factory.mktemp("cfg"))
    return run_stages(cfg, tmp_path_factory.mktemp("serial") / "run", list(STAGES)).root


def assert_same_artefacts(a, b, report: bool = True) -> None:
    """Teachers (learnt weights, statistics, measured success), shards and table agree."""
    for task in TASKS:
        teachers = a / "teachers" / task, b / "teachers" / task
        with zipfile.ZipFile(teachers[0] / "teacher.zip") as za, \
                zipfile.ZipFile(teachers[1] / "teacher.zip") as zb:
            for name in LEARNT:
                assert za.read(name) == zb.read(name), f"{task}: {name} differs"
        assert (teachers[0] / "obs_norm.npz").read_bytes() == \
            (teachers[1] / "obs_norm.npz").read_bytes(), task
        success = [json.loads((t / "eval.json").read_text())["success"] for t in teachers]
        assert success[0] == success[1], (task, success)
        assert not list(teachers[1].glob("checkpoint*")), "resume files left behind"
    shards = sorted(p.relative_to(a) for p in (a / "data").rglob("*.npz"))
    assert len(shards) == len(TASKS) * 2, shards
    for shard in shards:
        assert (a / shard).read_bytes() == (b / shard).read_bytes(), shard
    if report:
        assert (a / "report" / "eval.json").read_bytes() == \
            (b / "report" / "eval.json").read_bytes()
    assert not list(b.rglob(".*.tmp")), "a temporary file of an atomic write was left"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["processes", pytest.param("ray", marks=needs_ray)])
def test_every_executor_trains_collects_and_evaluates_the_same(serial_run, kind, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    cfg = ppo_toy_config(tmp_path)
    executor = make_executor(2, kind, cfg.ray)
    try:
        other = run_stages(cfg, tmp_path / "run", list(STAGES), executor=executor).root
    finally:
        getattr(executor, "shutdown", lambda: None)()
    assert_same_artefacts(serial_run, other)
    ledger = json.loads((other / "run.json").read_text())["stages"]
    assert ledger["teachers"]["success"] == json.loads(
        (serial_run / "run.json").read_text())["stages"]["teachers"]["success"]
    progress = json.loads((other / "progress.json").read_text())  # the last stage's bar
    assert (progress["stage"], progress["done"], progress["jobs_done"]) == \
        ("eval", progress["total"], 2 * len(TASKS)), progress


def test_the_wide_grasp_config_trains_100_random_urdfs_teachers_and_holds_out_30():
    from distill_ros.tasks.grasp_objects import OBJECTS, USER_OBJECTS

    cfg = load_config("config/grasp_wide.yaml")  # every object is loaded and checked to fit
    assert (len(cfg.tasks), len(cfg.held_out), cfg.executor) == (100, 30, "ray")
    assert not set(cfg.tasks) & set(cfg.held_out)
    for name in cfg.tasks + cfg.held_out:
        path = (USER_OBJECTS.get(name) or OBJECTS[name]).path
        assert path.endswith(f"random_urdfs/{name[4:]}/{name[4:]}.urdf"), (name, path)


def _pid_of(_job: int) -> int:
    import os

    return os.getpid()


def test_a_stage_executor_spreads_jobs_over_worker_processes_and_stops_them():
    import os

    from distill_ros.executor import ProcessExecutor, stage_executor

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine gives the process one core: no pool to start")
    with stage_executor("processes") as executor:
        assert isinstance(executor, ProcessExecutor)
        pids = executor.map(_pid_of, list(range(8)))
        workers = list(executor._pool._processes.values())
    assert os.getpid() not in pids, "the jobs ran in this process"
    assert all(not p.is_alive() for p in workers), "the stage left its workers running"
    with stage_executor("serial") as executor:
        assert executor.map(_pid_of, [0]) == [os.getpid()]

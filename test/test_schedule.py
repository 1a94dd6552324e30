"""Jobs that wait for others (`schedule.run_graph`), and teachers trained in segments."""

from __future__ import annotations

import json
import time
import zipfile

import pytest

from distill_ros.distill.offline.overlap import segment_count
from distill_ros.executor import ProcessExecutor, SerialExecutor
from distill_ros.schedule import Node, levels, run_graph
from distill_ros.teachers.jobs import TeacherPlan
from test_executor_jobs import LEARNT, assert_same_artefacts, ppo_toy_config


def stamp(job: tuple[str, float]) -> dict:
    """Sleep `job[1]` s; when this job started and ended (wall clock, any process)."""
    started = time.time()
    time.sleep(job[1])
    return {"name": job[0], "start": started, "end": time.time()}


def fail(job: object) -> None:
    """A job that fails."""
    raise RuntimeError(f"job {job} failed")


def test_the_longest_waiting_chain_starts_first_and_nothing_before_what_it_waits_for():
    # a -> b -> c is the long chain; x and y wait for nothing; z waits for x
    nodes = [Node("x", stamp, ("x", 0), "t"), Node("z", stamp, ("z", 0), "t", ("x",)),
             Node("y", stamp, ("y", 0), "t"), Node("a", stamp, ("a", 0), "t"),
             Node("b", stamp, ("b", 0), "t", ("a",)), Node("c", stamp, ("c", 0), "t", ("b",))]
    assert levels(nodes) == {"x": 2, "z": 1, "y": 1, "a": 3, "b": 2, "c": 1}
    results = run_graph(SerialExecutor(), nodes)
    order = sorted(results, key=lambda k: results[k]["start"])
    assert order == ["a", "x", "b", "z", "y", "c"], order


def test_a_cycle_or_an_unknown_dependency_is_refused_and_a_job_error_is_raised():
    with pytest.raises(ValueError, match="cycle through"):
        levels([Node("a", stamp, ("a", 0), "t", ("b",)), Node("b", stamp, ("b", 0), "t", ("a",))])
    with pytest.raises(ValueError, match="waits for 'q', which is no node"):
        levels([Node("a", stamp, ("a", 0), "t", ("q",))])
    with pytest.raises(RuntimeError, match="job 7 failed"):
        run_graph(SerialExecutor(), [Node("f", fail, 7, "t")])


def test_a_job_starts_when_what_it_waits_for_ends_not_when_its_stage_ends():
    pool = ProcessExecutor(2)
    try:
        pool.map(stamp, [("warm", 0.5), ("warm", 0.5)])  # both workers up and imported
        nodes = [Node("teacher_a", stamp, ("teacher_a", 0.3), "teachers"),
                 Node("teacher_b", stamp, ("teacher_b", 4.0), "teachers"),
                 Node("shard_a", stamp, ("shard_a", 0.3), "collect", ("teacher_a",))]
        r = run_graph(pool, nodes)
    finally:
        pool.shutdown()
    assert r["shard_a"]["start"] >= r["teacher_a"]["end"]
    assert r["shard_a"]["end"] < r["teacher_b"]["end"], r  # no barrier after the teachers


@pytest.mark.parametrize("teachers, slots, segments", [
    (3, 2, 2), (5, 4, 4), (2, 2, 1), (1, 2, 1), (4, 2, 1), (101, 2, 1), (7, 2, 2)])
def test_teachers_are_cut_into_segments_only_where_workers_would_idle(teachers, slots,
                                                                      segments):
    assert segment_count(teachers, slots) == segments


def test_a_teacher_trained_in_segments_is_the_teacher_trained_in_one_job(tmp_path):
    cfg = ppo_toy_config(tmp_path, tasks=["goal_1"])
    whole = TeacherPlan(cfg.family, ("goal_1",), cfg.seed, cfg.teachers, tmp_path / "whole")
    cut = TeacherPlan(cfg.family, ("goal_1",), cfg.seed, cfg.teachers, tmp_path / "cut")
    assert cut.segments("goal_1", 2) == [512, None]   # 1024 steps, checkpoints every 512
    one = whole("goal_1")
    first = cut.segment(("goal_1", 512))
    assert (first["until"], cut.recorded("goal_1")) == (512, None)
    assert not (tmp_path / "cut" / "teachers" / "goal_1" / "teacher.zip").exists()
    assert (tmp_path / "cut" / "teachers" / "goal_1" / "checkpoint.zip").is_file()
    last = cut.segment(("goal_1", None))
    assert last["success"] == one["success"]
    files = [p / "teachers" / "goal_1" for p in (tmp_path / "whole", tmp_path / "cut")]
    with zipfile.ZipFile(files[0] / "teacher.zip") as a, \
            zipfile.ZipFile(files[1] / "teacher.zip") as b:
        for name in LEARNT:
            assert a.read(name) == b.read(name), name
    assert (files[0] / "obs_norm.npz").read_bytes() == (files[1] / "obs_norm.npz").read_bytes()
    assert not list(files[1].glob("checkpoint*"))


@pytest.mark.slow
def test_three_teachers_on_two_workers_in_segments_write_the_serial_run(tmp_path,
                                                                        monkeypatch):
    import test_executor_jobs

    tasks = ["goal_1", "goal_6", "goal_3"]
    monkeypatch.setattr(test_executor_jobs, "TASKS", tasks)
    cfg = ppo_toy_config(tmp_path, tasks=tasks)
    from distill_ros.pipeline import run_stages

    serial = run_stages(cfg, tmp_path / "serial", ["teachers", "collect"]).root
    pool = ProcessExecutor(2)
    try:
        other = run_stages(cfg, tmp_path / "pool", ["teachers", "collect"], executor=pool).root
    finally:
        pool.shutdown()
    assert_same_artefacts(serial, other, report=False)
    stages = json.loads((other / "run.json").read_text())["stages"]
    assert stages["collect"]["total_steps"] == \
        json.loads((serial / "run.json").read_text())["stages"]["collect"]["total_steps"]

"""One progress bar over jobs spread across workers, and the same numbers in progress.json."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from distill_ros.executor import ProcessExecutor, SerialExecutor, make_executor
from distill_ros.executor_ray import JobNeeds, RayConfig, RayExecutor
from distill_ros.progress import StageProgress, read_progress, report, reporting

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'distill_ros[ray]'")


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_running_totals_from_a_retried_job_are_not_counted_twice(tmp_path):
    clock = FakeClock()
    path = tmp_path / "progress.json"
    screen = io.StringIO()
    with StageProgress("collect", [10, 5], "ep", path, clock=clock, file=screen) as bar:
        bar.put((0, 4))
        bar.put((0, 2))     # the job's worker died; its retry counts again from zero
        assert bar.snapshot()["done"] == 4
        bar.put((0, 7))
        bar.job_done(1)     # returned without reporting: all of its units are done
        clock.now += 2.0
        snap = bar.snapshot()
        assert (snap["done"], snap["total"], snap["jobs_done"], snap["jobs_total"]) == \
            (12, 15, 1, 2)
        assert (snap["rate_per_s"], snap["eta_s"]) == (6.0, 0.5)
        bar.bar.refresh()
        assert "| 12/15 " in screen.getvalue().split("\r")[-1]  # the same on the bar
    assert json.loads(path.read_text()) == snap  # close() wrote the final numbers
    assert read_progress(tmp_path) == snap and read_progress(tmp_path / "none") == {}


def test_progress_json_is_rewritten_at_most_once_a_second(tmp_path):
    clock = FakeClock()
    path = tmp_path / "progress.json"
    bar = StageProgress("eval", [10], "ep", path, clock=clock, file=io.StringIO())
    bar.put((0, 1))
    assert not path.exists()  # written 0 s ago (at start): not yet
    clock.now += 1.0
    bar.put((0, 2))
    assert json.loads(path.read_text())["done"] == 2
    bar.put((0, 3))
    assert json.loads(path.read_text())["done"] == 2  # throttled
    clock.now += 1.0
    bar.tick()  # the driver's poll writes it even when no message came
    assert json.loads(path.read_text())["done"] == 3
    bar.close()


def test_a_job_sends_its_running_total_at_most_every_half_second():
    clock, sent = FakeClock(), []

    class Sink:
        def put(self, item):
            sent.append(item)

    report(5)  # outside a job: counted nowhere, no error
    with reporting(3, Sink(), every_s=0.5, clock=clock):
        report(1)
        report(2)
        assert sent == []
        clock.now += 0.6
        report(1)
        assert sent == [(3, 4)]
        report(1)
    assert sent == [(3, 4), (3, 5)]  # the rest goes when the job ends
    report(1)
    assert sent == [(3, 4), (3, 5)]


@dataclass(frozen=True)
class SeenMidJob:
    """A job that works (reports units) until progress.json shows them while it still runs."""

    path: Path

    def __call__(self, units: int) -> bool:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            report(1)
            snap = read_progress(self.path.parent)
            if snap.get("done", 0) >= units and snap["jobs_done"] == 0:
                return True
            time.sleep(0.05)
        return False


@pytest.fixture
def ray_local(monkeypatch):
    """An embedded 2-CPU Ray instance, stopped after the test."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'distill_ros[ray]'")
    import ray

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack test/
    executor = make_executor(2, "ray", RayConfig(jobs={"teachers": JobNeeds(num_cpus=2)}))
    yield executor
    executor.shutdown()


@pytest.mark.parametrize("kind", ["serial", "processes", pytest.param("ray", marks=needs_ray)])
def test_worker_progress_reaches_the_driver_while_the_job_runs(kind, tmp_path, request):
    executor = {"serial": SerialExecutor, "processes": lambda: ProcessExecutor(2)}.get(
        kind, lambda: request.getfixturevalue("ray_local"))()
    path = tmp_path / "progress.json"
    with StageProgress("collect", [100], "ep", path, file=io.StringIO()) as bar:
        seen = executor.map(SeenMidJob(path), [5], "collect", bar)
    assert seen == [True], "the driver never showed the job's counts while it ran"
    snap = json.loads(path.read_text())
    assert (snap["done"], snap["jobs_done"]) == (100, 1), snap
    assert snap["executor"] == ("" if kind == "serial" else repr(executor))


@needs_ray
def test_ray_tasks_declare_the_needs_of_their_kind(ray_local):
    def assigned(_):  # local: Ray ships it by value
        import ray

        return ray.get_runtime_context().get_assigned_resources()

    assert ray_local.map(assigned, [0], "teachers") == [{"CPU": 2.0}]  # ray.jobs.teachers
    import ray

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # loopback only
    assert ray_local.map(assigned, [0, 1], "collect") == [{"CPU": 1.0}] * 2  # the default


def test_ray_needs_are_checked_per_kind(tmp_path):
    with pytest.raises(ValueError, match=r"ray.jobs key must be one of \['teachers', "
                       r"'collect', 'eval', 'rollout'\], got 'teacher'"):
        RayConfig(jobs={"teacher": JobNeeds()})
    with pytest.raises(ValueError, match="num_cpus must be > 0, got 0"):
        JobNeeds(num_cpus=0)
    executor = RayExecutor.from_config(RayConfig(num_gpus=0.5,
                                                 jobs={"eval": JobNeeds(0.5, 0.0)}))
    assert executor.needs("eval") == JobNeeds(0.5, 0.0)
    assert executor.needs("teachers") == JobNeeds(1.0, 0.5)


def worker_pid(_: object) -> int:
    """Which process ran the job."""
    import os

    return os.getpid()


def test_process_workers_stay_up_from_one_stage_to_the_next_until_shutdown():
    import os

    executor = ProcessExecutor(2)
    first = set(executor.map(worker_pid, range(4)))
    second = set(executor.map(worker_pid, range(4)))
    assert os.getpid() not in first and len(first | second) <= 2, (first, second)
    assert first & second, "the second stage started new workers"
    executor.shutdown()
    for pid in first | second:
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), pid

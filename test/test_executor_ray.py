"""`executor: ray`: the same config and seed write the same shards as the serial executor.

Runs where Ray is installed (`pip install 'distill_ros[ray]'`): an embedded local Ray
instance with 2 CPUs on loopback, the toy family (analytic TorchScript expert).
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import write_toy_config

from distill_ros.config import load_config
from distill_ros.executor import RayExecutor, SerialExecutor, make_executor
from distill_ros.pipeline import run_stages

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'distill_ros[ray]'")


@pytest.fixture
def ray_executor(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    executor = make_executor(2, "ray")
    yield executor
    executor.shutdown()


def _config(tmp_path, **overrides):
    path = write_toy_config(tmp_path, ["goal_1", "goal_6"], **{
        "seed": 9, "collect": {"episodes_per_task": 12, "shard_episodes": 4},
        "executor": "ray", "ray": {"num_cpus": 1}, **overrides})
    return load_config(path)


@needs_ray
def test_ray_writes_the_same_shards_as_serial(tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    cfg = _config(tmp_path)
    executor = make_executor(2, cfg.executor, cfg.ray)  # as the CLI builds it
    assert isinstance(executor, RayExecutor)
    serial = run_stages(cfg, tmp_path / "serial", ["teachers", "collect"],
                        executor=SerialExecutor())
    try:
        on_ray = run_stages(cfg, tmp_path / "ray", ["teachers", "collect"], executor=executor)
        assert ray.cluster_resources()["CPU"] == 2  # the embedded instance, as asked
    finally:
        executor.shutdown()
    shards = sorted(p.relative_to(serial.root) for p in (serial.root / "data").rglob("*.npz"))
    assert len(shards) == 2 * 3, shards
    for shard in shards:
        assert (serial.root / shard).read_bytes() == (on_ray.root / shard).read_bytes(), shard


@needs_ray
def test_ray_runs_each_job_as_a_task_in_another_process(ray_executor):
    import os

    def pid_and_square(x: int) -> tuple[int, int]:  # local: Ray ships it by value
        import os

        return os.getpid(), x * x

    pids = ray_executor.map(pid_and_square, [1, 2, 3, 4])
    assert [square for _, square in pids] == [1, 4, 9, 16]  # job order kept
    assert os.getpid() not in {pid for pid, _ in pids}


def test_a_bad_executor_name_or_task_size_is_refused():
    with pytest.raises(ValueError, match=r"executor must be one of \['serial', "):
        make_executor(0, "dask")
    with pytest.raises(ValueError, match="num_cpus > 0"):
        RayExecutor(num_cpus=0)


def test_the_executor_is_checked_and_not_part_of_the_config_hash(tmp_path):
    ray_cfg = _config(tmp_path, ray={"address": "auto", "num_cpus": 2})
    assert ray_cfg.digest() == _config(tmp_path, executor="serial").digest()
    with pytest.raises(ValueError, match=r"executor must be one of \['serial', 'processes', "
                       r"'ray'\], got 'dask'"):
        _config(tmp_path, executor="dask")
    with pytest.raises(ValueError, match="ray.num_cpus must be > 0, got 0"):
        _config(tmp_path, ray={"num_cpus": 0})


@pytest.mark.skipif(importlib.util.find_spec("aiohttp") is None,
                    reason="the Ray dashboard needs ray[default]: pip install 'distill_ros[ray]'")
@needs_ray
def test_the_dashboard_link_in_progress_json_answers(tmp_path, monkeypatch):
    """`ray.dashboard: true`: the run's progress names the dashboard, and it is up there."""
    import json
    import urllib.request
    from pathlib import Path

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    cfg = _config(tmp_path, ray={"num_cpus": 1, "dashboard": True})
    token = Path.home() / ".ray" / "auth_token"  # Ray's token authentication, when it is on
    executor = make_executor(2, cfg.executor, cfg.ray)
    try:
        run = run_stages(cfg, tmp_path / "run", ["teachers"], executor=executor)
        url = json.loads((run.root / "progress.json").read_text())["dashboard_url"]
        assert url.startswith("http://127.0.0.1:"), url  # loopback only
        request = urllib.request.Request(f"{url}/api/version", headers={
            "Authorization": f"Bearer {token.read_text().strip()}"} if token.is_file() else {})
        with urllib.request.urlopen(request, timeout=30) as answer:
            version = json.loads(answer.read())
    finally:
        executor.shutdown()
    import ray

    assert version["ray_version"] == ray.__version__

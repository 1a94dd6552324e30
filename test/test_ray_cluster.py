"""Ray faults on a 2-node `ray.cluster_utils.Cluster` on this machine (loopback, 1 CPU each).

- Jobs land on both nodes.
- A worker killed with a real SIGKILL in the middle of training a teacher is retried: the
  run ends with the same teachers and shards as an unkilled serial run.
- A shard job killed after writing its shard is retried without writing the shard again.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from distill_ros.collect import CollectPlan
from distill_ros.executor import RayExecutor, SerialExecutor
from distill_ros.pipeline import run_stages

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'distill_ros[ray]'")
sys.path.insert(0, str(Path(__file__).parent))
from test_executor_jobs import TASKS, assert_same_artefacts, ppo_toy_config  # noqa: E402

pytestmark = pytest.mark.slow
LOOPBACK = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "num_cpus": 1}


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of 1 CPU on loopback, and this process connected to them.

    Ray turns a 127.0.0.1 address into this machine's network address unless it is told
    that clusters are off-host-less (its Windows/macOS mode): loopback only, as here.
    """
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.setenv(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, "0")  # for the child processes
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)   # for this one
        two = Cluster(initialize_head=True, head_node_args=LOOPBACK)
        two.add_node(**LOOPBACK)
        two.wait_for_nodes()
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack test/
        ray.init(address=two.address, log_to_driver=False)
        assert two.address.startswith("127.0.0.1:"), two.address
        assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"] * 2
        yield two
        ray.shutdown()
        two.shutdown()


def on_cluster(cluster) -> RayExecutor:
    """The executor `ray.address` gives: it joins the running cluster."""
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    return RayExecutor(address=cluster.address)


def small_config(folder, timesteps: int):
    return ppo_toy_config(folder, teachers={
        "algo": "ppo", "timesteps": timesteps, "n_envs": 2, "n_steps": 128, "batch_size": 64,
        "checkpoint_every": 512, "eval_episodes": 3, "net_arch": [32, 32]})


def worker_pids(task_name: str) -> list[int]:
    """Ray workers on this machine running a task named `task_name` (title ray::<name>)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and title.strip() == f"ray::{task_name}":
            pids.append(int(proc.name))
    return pids


def teachers_rolled_out(cfg, run: Path, data_dir: Path) -> CollectPlan:
    """The collection plan of `cfg` with the teachers trained in `run`, writing to `data_dir`."""
    return CollectPlan(cfg.family, tuple(cfg.tasks), cfg.seed, cfg.collect, data_dir,
                       {t: (run / "teachers" / t / "teacher.zip",) for t in cfg.tasks})


@dataclass(frozen=True)
class OnNode:
    """Run a job and say which Ray node ran it."""

    fn: CollectPlan

    def __call__(self, job):
        return ray.get_runtime_context().get_node_id(), self.fn(job)


def test_jobs_land_on_both_nodes_and_write_the_serial_shards(cluster, tmp_path):
    cfg = small_config(tmp_path, 1024)
    serial = run_stages(cfg, tmp_path / "serial", ["teachers", "collect"]).root
    plan = teachers_rolled_out(cfg, serial, tmp_path / "ray" / "data")
    results = on_cluster(cluster).map(OnNode(plan), plan.missing(), "collect")
    nodes = {node for node, _ in results}
    assert len(nodes) == 2, f"all {len(results)} jobs ran on one node"
    for path in (serial / "data").rglob("*.npz"):
        assert path.read_bytes() == (tmp_path / "ray" / path.relative_to(serial)).read_bytes()


def test_a_worker_killed_mid_training_is_retried_and_the_run_ends_the_same(cluster, tmp_path):
    cfg = small_config(tmp_path, 4096)
    killed: list[int] = []
    unfinished: list[str] = []

    def kill_a_teacher_worker() -> None:  # once a checkpoint shows that training is underway
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and not killed:
            started = list((tmp_path / "ray" / "teachers").glob("*/checkpoint.zip"))
            pids = worker_pids("teachers") if started else []
            if pids:
                unfinished.extend(t for t in TASKS if not (
                    tmp_path / "ray" / "teachers" / t / "teacher.zip").exists())
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_teacher_worker, daemon=True)
    killer.start()
    on_ray = run_stages(cfg, tmp_path / "ray", ["teachers", "collect"],
                        executor=on_cluster(cluster)).root
    killer.join()
    assert killed, "no teacher worker was found to kill"
    assert not Path(f"/proc/{killed[0]}").exists(), "the SIGKILLed worker still runs"
    assert len(unfinished) >= 1, "both teachers had finished training when the kill came"
    serial = run_stages(cfg, tmp_path / "serial", ["teachers", "collect"],
                        executor=SerialExecutor()).root
    assert_same_artefacts(serial, on_ray, report=False)


@dataclass(frozen=True)
class KilledAfterWriting:
    """The first attempt of each job writes its shard, notes the file, then waits to be killed."""

    plan: CollectPlan
    notes: Path

    def __call__(self, job):
        note = self.notes / f"{job[0]}_{job[1]}.json"
        if note.exists():  # the retry
            return self.plan(job)
        result = self.plan(job)
        stat = self.plan.shard_path(*job).stat()
        note.write_text(json.dumps({"pid": os.getpid(), "inode": stat.st_ino,
                                    "mtime_ns": stat.st_mtime_ns}))
        time.sleep(120.0)  # killed here, its shard already written
        return result


def test_a_shard_written_before_its_worker_was_killed_is_not_written_again(cluster, tmp_path):
    cfg = small_config(tmp_path, 1024)
    serial = run_stages(cfg, tmp_path / "serial", ["teachers", "collect"]).root
    plan = teachers_rolled_out(cfg, serial, tmp_path / "ray" / "data")
    notes = tmp_path / "notes"
    notes.mkdir()
    jobs = plan.missing()[:2]

    def kill_each_writer() -> None:
        deadline, done = time.monotonic() + 120.0, set()
        while time.monotonic() < deadline and len(done) < len(jobs):
            for note in notes.glob("*.json"):
                if note.name not in done:
                    os.kill(json.loads(note.read_text())["pid"], signal.SIGKILL)
                    done.add(note.name)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_each_writer, daemon=True)
    killer.start()
    results = on_cluster(cluster).map(KilledAfterWriting(plan, notes), jobs, "collect")
    killer.join()
    for (task, k), result in zip(jobs, results):
        note = json.loads((notes / f"{task}_{k}.json").read_text())
        stat = plan.shard_path(task, k).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (note["inode"], note["mtime_ns"]), \
            f"{task} shard {k} was written again by the retry"
        assert plan.shard_path(task, k).read_bytes() == \
            (serial / "data" / task / f"shard_{k:04d}.npz").read_bytes()
        assert result["episodes"] == cfg.collect.shard_episodes

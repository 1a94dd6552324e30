"""Scale-out benchmark: teachers + collect on serial, a process pool and Ray, and Ray's overhead.

Runs the `teachers` and `collect` stages of a config (default config/grasp_quick.yaml) from
scratch three times, in fresh run folders: in this process, on a pool of `--workers` spawned
processes, and as Ray tasks on an embedded `--workers`-CPU Ray instance (started before the
clock runs; its start is reported apart). It checks that the three runs wrote the same shards
and teacher weights, and prints the wall times, the speed-ups over serial, the ideal speed-up
of the measured jobs on `--workers` workers (`ideal_speedup`: as `schedule.run_graph` runs
them, teachers cut into segments and each task's shards right after its teacher;
`ideal_speedup_with_barrier`: whole teachers, then the shards), the per-job costs that
docs/scaling.md extrapolates from, and Ray's per-task overhead measured with a no-op task
(one at a time: round trip; all at once: throughput).

    python bench/bench_scale.py [--config config/grasp_quick.yaml] [--workers 2]
    python bench/bench_scale.py --quick          # grasp_quick with small budgets, minutes

Prints one JSON object. Time it on a quiet machine (`flock /work/bench.lock ...` here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill_ros.config import load_config  # noqa: E402
from distill_ros.executor import ProcessExecutor, RayExecutor, SerialExecutor  # noqa: E402
from distill_ros.pipeline import run_stages  # noqa: E402

#: --quick: grasp_quick's objects with budgets that finish in minutes on 2 cores (teachers that
#: short may never succeed: every episode is kept, so the shards are not empty)
QUICK = {"teachers": {"timesteps": 3000, "checkpoint_every": 1500, "eval_episodes": 2},
         "collect": {"episodes_per_task": 8, "shard_episodes": 4, "keep": "all"}}


def noop(_: object = None) -> None:
    """The no-op job of the overhead measurement."""


def ray_overhead(executor: RayExecutor, tasks: int) -> dict:
    """Per-task cost of a no-op Ray task: one at a time, and `tasks` at once."""
    import ray

    task = ray.remote(num_cpus=1)(noop)
    ray.get(task.remote())  # a worker is up
    trips = []
    for _ in range(tasks):
        started = time.perf_counter()
        ray.get(task.remote())
        trips.append(time.perf_counter() - started)
    started = time.perf_counter()
    ray.get([task.remote() for _ in range(tasks)])
    batch = time.perf_counter() - started
    started = time.perf_counter()
    executor.map(noop, [None] * tasks, "collect")
    seam = time.perf_counter() - started
    return {"noop_tasks": tasks, "roundtrip_ms_median": 1e3 * statistics.median(trips),
            "roundtrip_ms_p90": 1e3 * sorted(trips)[int(0.9 * (tasks - 1))],
            "throughput_ms_per_task": 1e3 * batch / tasks,
            "executor_map_ms_per_task": 1e3 * seam / tasks}


def timed_run(cfg, run_dir: Path, executor) -> dict:
    """Wall time of teachers + collect in a fresh run folder, and each stage's own.

    With more than one worker the teachers stage also writes the shards (each task's once its
    teacher is trained), so its time holds most of collect's.
    """
    started = time.perf_counter()
    run = run_stages(cfg, run_dir, ["teachers", "collect"], executor=executor)
    wall = time.perf_counter() - started
    stages = json.loads((run.root / "run.json").read_text())["stages"]
    return {"wall_s": wall, "teachers_s": stages["teachers"]["wall_s"],
            "collect_s": stages["collect"]["wall_s"]}


def fingerprint(run_dir: Path) -> dict[str, bytes]:
    """Shards and learnt teacher weights, by path (what must not depend on the executor)."""
    found = {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*.npz")}
    for teacher in run_dir.glob("teachers/*/teacher.zip"):
        with zipfile.ZipFile(teacher) as z:
            found[str(teacher.relative_to(run_dir))] = z.read("policy.pth")
    return found


def makespan(jobs: list[float], workers: int) -> float:
    """Longest-job-first schedule of `jobs` (seconds) on `workers` workers: its length."""
    load = [0.0] * workers
    for job in sorted(jobs, reverse=True):
        load[load.index(min(load))] += job
    return max(load)


def graph_makespan(teacher_s: list[float], shard_s: float, shards_per_task: int,
                   workers: int, checkpoints: int) -> float:
    """Length of `run_graph`'s schedule of teachers + collect with these job costs.

    The teachers are cut as `overlap.segments_for` cuts them (at most at their `checkpoints`,
    into equal parts here; the cost of resuming one is left out), each task's shards wait for
    its teacher;
    a free worker takes the ready job with the longest chain behind it, as `run_graph` does.
    """
    from distill_ros.distill.offline.overlap import segments_for
    from distill_ros.schedule import Node, levels

    k = min(segments_for(len(teacher_s), workers), checkpoints)
    nodes, cost = [], {}
    for t, seconds in enumerate(teacher_s):
        for j in range(k):
            after = (("t", t, j - 1),) if j else ()
            nodes.append(Node(("t", t, j), noop, None, "teachers", after))
            cost[("t", t, j)] = seconds / k
        for j in range(shards_per_task):
            nodes.append(Node(("s", t, j), noop, None, "collect", (("t", t, k - 1),)))
            cost[("s", t, j)] = shard_s
    rank, order = levels(nodes), {n.key: i for i, n in enumerate(nodes)}
    waiting = sorted(nodes, key=lambda n: (-rank[n.key], order[n.key]))
    free, ends, now = [0.0] * workers, {}, 0.0
    while waiting:
        now = max(now, min(free))
        ready = [n for n in waiting if all(ends.get(a, now + 1) <= now for a in n.after)]
        if not ready:  # wait for the next job to end
            now = min(e for e in ends.values() if e > now)
            continue
        w = free.index(min(free))
        waiting.remove(ready[0])
        ends[ready[0].key] = free[w] = now + cost[ready[0].key]
    return max(free)


def job_costs(cfg, serial_dir: Path, serial: dict) -> dict:
    """Per-job costs of the serial run: each teacher, one shard, one eval episode."""
    from distill_ros.evaluate import success_rate
    from distill_ros.tasks.base import get_family
    from distill_ros.teachers import load_teacher

    teachers = {t: json.loads((serial_dir / "teachers" / t / "eval.json").read_text())["wall_s"]
                for t in cfg.tasks}
    shards = len(list((serial_dir / "data").rglob("*.npz")))
    fam = get_family(cfg.family)
    task = cfg.tasks[0]
    started = time.perf_counter()  # what every collect and eval job pays first
    teacher = load_teacher(serial_dir / "teachers" / task / "teacher.zip", fam.obs_spec,
                           fam.act_spec)
    loading = time.perf_counter() - started
    episodes = 5
    started = time.perf_counter()
    success_rate(cfg.family, task, teacher.act, episodes, 0, 0)
    eval_episode = (time.perf_counter() - started) / episodes
    collected = cfg.collect.episodes_per_task * len(cfg.tasks)
    return {"teacher_s": teachers, "collect_shard_s": serial["collect_s"] / shards,
            "collect_episode_s": serial["collect_s"] / collected,
            "shards": shards, "shard_episodes": cfg.collect.shard_episodes,
            "eval_episode_s": eval_episode, "teacher_load_s": loading,
            "teacher_timesteps": cfg.teachers.timesteps}


def load(args: argparse.Namespace, folder: Path):
    """The config, with the --quick budgets when asked."""
    import yaml

    data = yaml.safe_load(Path(args.config).read_text())
    if args.quick:
        for section, values in QUICK.items():
            data[section] = {**data.get(section, {}), **values}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def main() -> None:
    """Run the three executors, then print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/grasp_quick.yaml")
    parser.add_argument("--quick", action="store_true", help="small budgets (minutes)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noop-tasks", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the three run folders")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    folder = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    cfg = load(args, folder)
    runs, prints = {}, {}
    runs["serial"] = timed_run(cfg, folder / "serial", SerialExecutor())
    prints["serial"] = fingerprint(folder / "serial")
    runs[f"processes_{args.workers}"] = timed_run(cfg, folder / "processes",
                                                  ProcessExecutor(args.workers))
    prints["processes"] = fingerprint(folder / "processes")
    ray_executor = RayExecutor(local_cpus=args.workers)
    started = time.perf_counter()
    ray_executor._ray()  # the embedded instance up before the clock runs
    ray_start = time.perf_counter() - started
    try:
        runs[f"ray_{args.workers}"] = timed_run(cfg, folder / "ray", ray_executor)
        prints["ray"] = fingerprint(folder / "ray")
        overhead = ray_overhead(ray_executor, args.noop_tasks)
    finally:
        ray_executor.shutdown()
    costs = job_costs(cfg, folder / "serial", runs["serial"])
    serial = runs["serial"]["wall_s"]
    jobs = list(costs["teacher_s"].values()) + [costs["collect_shard_s"]] * costs["shards"]
    print(json.dumps({
        "config": args.config, "quick": args.quick, "workers": args.workers,
        "tasks": cfg.tasks, "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "runs": runs,
        "speedup": {k: serial / v["wall_s"] for k, v in runs.items() if k != "serial"},
        "ideal_speedup": serial / graph_makespan(
            list(costs["teacher_s"].values()), costs["collect_shard_s"],
            cfg.collect.n_shards(), args.workers,
            -(-cfg.teachers.timesteps // cfg.teachers.checkpoint_every)),
        "ideal_speedup_with_barrier": serial / (
            makespan(list(costs["teacher_s"].values()), args.workers)
            + makespan([costs["collect_shard_s"]] * costs["shards"], args.workers)),
        "job_seconds_total": sum(jobs), "job_costs": costs,
        "same_artefacts": prints["serial"] == prints["processes"] == prints["ray"],
        "artefacts_compared": len(prints["serial"]),
        "ray": {"start_s": ray_start, **overhead},
        "run_dir": str(folder) if args.keep else None}, indent=2))
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()

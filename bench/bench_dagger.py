"""DAgger vs offline distillation on the toy family, and peak memory with the buffer capped.

Quality. The student reads `proprio` + `command` (with its mask); the teacher, the toy's
analytic expert, reads the privileged `state` group and the command mask, as a Gaussian of
std 0.1 m/s so the KL losses apply. Offline: the teacher drives (β = 1) the family's own
episodes. DAgger, one run per β schedule (MSE) and one per loss (linear β), in perturbed
episodes: a random push first (`RandomPush`) and command axes masked with probability 0.5.
Every student is then evaluated alone in perturbed episodes, on the seen tasks and on
held-out ones. Printed per run: success, teacher queries, wall time.

Memory. A child process per setting runs DAgger storing the `points` group (the cloud
dominates a transition's bytes) and reports its peak RSS and its RSS after every round:
the buffer capped at a tenth of the run vs large enough to keep every transition.

Grasp (`--family grasp --run-dir RUN`): the issue's three criteria on a finished offline run's
objects. DAgger (`--config`, default config/grasp_quick_dagger.yaml) runs from scratch with
copies of RUN's teachers (RUN is only read), once per `--seeds`; the teachers, RUN's offline
student and every DAgger student are evaluated through the eval stage on the same seeded
episodes (`--episodes` per task). RUN's offline collection is replayed to count its teacher
queries (every step of every episode, failures included) beside the steps it stored.

    python bench/bench_dagger.py [--rounds 12 --steps 50 --updates 150 --rss-rounds 20]
    python bench/bench_dagger.py --family grasp --run-dir runs/grasp_quick [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from distill_ros.config import StudentConfig
from distill_ros.distill.dagger.algorithm import student_input
from distill_ros.distill.dagger.collect import evaluate_student, round_seeds
from distill_ros.distill.dagger.config import BetaConfig, DaggerConfig
from distill_ros.distill.dagger.envs import group_spec, make_vector_env
from distill_ros.distill.dagger.perturb import RandomPush
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger, trained_student
from distill_ros.students.factory import build_student
from distill_ros.tasks import toy

REPO = Path(__file__).resolve().parents[1]
SEEN, HELD_OUT = list(toy.TASKS[:6]), list(toy.TASKS[6:])
STUDENT, TEACHER = ["proprio", "command"], ["state", "command"]
PUSH, MASKED = 10, 0.5
SCHEDULES = {
    "constant_0.5": BetaConfig(schedule="constant", start=0.5),
    "linear": BetaConfig(schedule="linear", start=1.0, end=0.0, horizon=2000),
    "exponential": BetaConfig(schedule="exponential", start=1.0, end=0.0, rate=0.998),
    "on_demand": BetaConfig(schedule="on_demand", threshold=0.3, fail_steps=20),
}
LOSSES = ("mse", "huber", "forward_kl", "reverse_kl")


class GaussianExpert:
    """The toy's expert on `state` + `command` + mask, as the mean of a Gaussian (0.1 m/s)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Velocity to the goal on the commanded axes (the mask is the last 3 columns)."""
        return toy.expert_action(obs[:, :9]) * obs[:, -3:]

    def act_distribution(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) in m/s."""
        return self.act(obs), np.full((len(obs), 3), 0.1, np.float32)


def make_env(task: str, perturbed: bool, groups: tuple[str, ...] = ("state", *STUDENT),
             n_points: int = toy.N_POINTS):
    """A toy env returning `groups`; perturbed: pushed first, command axes maybe masked."""
    env = toy.ToyEnv(task, groups=groups, n_points=n_points,
                     mask_prob=MASKED if perturbed else 0.0)
    return RandomPush(env, PUSH) if perturbed else env


def student_factory(hidden: list[int]):
    """`build_student` over the observation inputs DAgger hands it (name -> shape)."""
    def build(shapes: dict[str, tuple[int, ...]]):
        return build_student(StudentConfig(hidden=hidden), group_spec(shapes), toy.ACT_SPEC)
    return build


def run(name: str, cfg: DaggerConfig, perturbed: bool, out: Path, seed: int) -> dict:
    """One training run on the seen tasks: its figures and the trained student."""
    build = student_factory([64, 64])
    job = DaggerJob(make_env=functools.partial(make_env, perturbed=perturbed), tasks=SEEN,
                    build_student=build, load_teacher=lambda task: GaussianExpert(),
                    out_dir=out / name, seed=seed)
    started = time.monotonic()
    figures = train_dagger(cfg, job)
    return {"teacher_queries": figures["teacher_queries"],
            "wall_s": round(time.monotonic() - started, 2),
            "student": trained_student(out / name, build)}


def success(student, tasks: list[str], episodes: int, seed: int) -> float:
    """Mean success of `student` alone over `tasks`, in perturbed episodes."""
    envs = make_vector_env(functools.partial(make_env, perturbed=True), tasks, "sync")
    try:
        rates = evaluate_student(envs, lambda g: student.act(student_input(g)), STUDENT,
                                 tasks, episodes, round_seeds(77_000, seed, len(tasks)))
    finally:
        envs.close()
    return float(np.mean(list(rates.values())))


def quality(args: argparse.Namespace) -> dict:
    """Offline vs every DAgger variant: success (seen, held out), queries, wall time."""
    base = dict(n_envs=len(SEEN), vector="sync", rounds=args.rounds,
                steps_per_round=args.steps, updates_per_round=args.updates, batch_size=128,
                eval_every=args.rounds, eval_episodes=2, buffer_size=50_000,
                teacher_groups=TEACHER, student_groups=STUDENT)
    variants = {"offline": (DaggerConfig(**base, beta=BetaConfig(schedule="constant")),
                            False)}
    for name, beta in SCHEDULES.items():
        variants[f"dagger_{name}_mse"] = (DaggerConfig(**base, beta=beta), True)
    for loss in LOSSES[1:]:
        variants[f"dagger_linear_{loss}"] = (DaggerConfig(**base, beta=SCHEDULES["linear"],
                                                          loss=loss), True)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cfg, perturbed) in variants.items():
            r = run(name, cfg, perturbed, Path(tmp), args.seed)
            student = r.pop("student")
            rows[name] = {**r, "success_seen": success(student, SEEN, args.episodes, 1),
                          "success_held_out": success(student, HELD_OUT, args.episodes, 2)}
    return rows


CHILD = """
import json, sys
sys.path.insert(0, {bench!r})
import torch; torch.set_num_threads(1)
from bench_dagger import memory_child
print(json.dumps(memory_child({cap}, {rounds}, {steps}, {n_points}, {out!r})))
"""


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memory_child(cap: int, rounds: int, steps: int, n_points: int, out: str) -> dict:
    """In a fresh process: DAgger storing point clouds; RSS after each round and at peak."""
    trace: list[float] = []
    cfg = DaggerConfig(n_envs=len(SEEN), vector="sync", rounds=rounds, steps_per_round=steps,
                       updates_per_round=5, batch_size=64, eval_every=rounds, eval_episodes=1,
                       buffer_size=cap, teacher_groups=TEACHER,
                       student_groups=["points", "command"],
                       beta=BetaConfig(schedule="constant"))
    make = functools.partial(make_env, perturbed=False, n_points=n_points,
                             groups=("state", "points", "command"))
    job = DaggerJob(make_env=make, tasks=SEEN, build_student=student_factory([32]),
                    load_teacher=lambda task: GaussianExpert(), out_dir=Path(out), seed=0,
                    on_round=lambda row: trace.append(round(_rss_mb(), 1)))
    figures = train_dagger(cfg, job)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # kB on Linux
    return {"buffer_size": cap, "transitions": figures["env_steps"],
            "buffer_mb": round(figures["buffer_bytes"] / 2**20, 1),
            "peak_rss_mb": round(peak, 1), "rss_mb_per_round": trace}


def memory(args: argparse.Namespace) -> dict:
    """Peak RSS with the buffer capped (a tenth of the run) vs holding every transition."""
    total = args.rss_rounds * args.steps * len(SEEN)
    out = {}
    for name, cap in (("capped", max(1, total // 10)), ("uncapped", total)):
        with tempfile.TemporaryDirectory() as tmp:
            code = CHILD.format(bench=str(Path(__file__).parent), cap=cap,
                                rounds=args.rss_rounds, steps=args.steps,
                                n_points=args.rss_points, out=tmp)
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                  text=True, check=True)
            out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: Optional[list[str]] = None) -> dict:
    """Run the toy parts (or the grasp comparison) and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("toy", "grasp"), default="toy")
    parser.add_argument("--run-dir", type=Path, help="grasp: a finished offline run (read only)")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "grasp_quick_dagger.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="grasp: DAgger seeds")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="grasp: override a dagger setting, e.g. beta.horizon=900")
    parser.add_argument("--out", type=Path, help="grasp: where the DAgger runs go (default: tmp)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=50, help="steps per env per round")
    parser.add_argument("--updates", type=int, default=150, help="updates per round")
    parser.add_argument("--episodes", type=int, default=10, help="eval episodes per env")
    parser.add_argument("--rss-rounds", type=int, default=20)
    parser.add_argument("--rss-points", type=int, default=256, help="points per cloud")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.family == "grasp":
        from bench_dagger_grasp import grasp

        result = grasp(args)
        print(json.dumps(result, indent=2))
        return result
    result = {"family": "toy", "seen": SEEN, "held_out": HELD_OUT, "push_steps": PUSH,
              "masked_axis_prob": MASKED}
    if not args.skip_quality:
        result["quality"] = quality(args)
    result["memory"] = memory(args)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

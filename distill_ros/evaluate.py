"""Evaluation: per-task success of every teacher and of the exported student, same seeds."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from distill_ros.atomic import atomic_write, atomic_write_json, atomic_write_text
from distill_ros.checks import in_range, positive
from distill_ros.progress import PROGRESS_FILE, in_job, report
from distill_ros.rollout import Policy, episode_seed, run_episode, task_index
from distill_ros.tasks.base import make_env

log = logging.getLogger(__name__)
MAX_SEED = 2**32 - 1


@dataclass
class EvalConfig:
    """Settings of the `eval` section: per-task success of teachers and student, same seeds."""

    episodes: int = 50
    seed: int = 100_000         # base of the episode seeds, apart from the data's

    def __post_init__(self) -> None:
        positive("eval", episodes=self.episodes)
        in_range("eval.seed", self.seed, 0, MAX_SEED)


def success_rate(family: str, task: str, policy: Policy, episodes: int, seed: int,
                 task_index: int, desc: str = "", groups: tuple[str, ...] = ()) -> float:
    """Fraction of `episodes` seeded episodes in which `policy` succeeds.

    `groups` asks the family for those observation groups (a dict observation); empty: the
    family's flat observation.
    """
    env = make_env(family, task, groups=groups) if groups else make_env(family, task)
    try:
        wins = 0
        quiet = {"disable": True} if in_job() else {}  # a job's episodes count on its stage's bar
        for ep in tqdm(range(episodes), desc=desc or f"eval {task}", unit="ep", leave=False,
                       **quiet):
            wins += run_episode(env, policy, episode_seed(seed, task_index, ep)).success
            report(1)
    finally:
        env.close()
    return wins / episodes


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (Wilson 1927): sound at 0/n and n/n too."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)   # exact ends, no 0.9999999
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def evaluate_rows(run, cfg, tasks: list[str], episodes: int, with_teachers: bool = True,
                  executor=None, progress_path: Path | None = None) -> list[dict]:
    """Success of the exported student, and of the teacher for seen tasks, on `tasks`.

    A task's seeds depend on its place in the config (`tasks` then `held_out`), so a task
    evaluated again later gets the same episodes as in the run's own report. Teacher and
    student read the observation groups the config gives them (`ObservationViews.of`), the
    same as in training: a grouped student gets its inputs by name from one grouped env.
    `with_teachers=False` leaves the teacher columns empty (None). Each (task, policy) pair
    is one `EvalPlan` job on `executor` (default: this process), so every executor writes
    the same table; `progress_path` gets the numbers of its progress bar.
    """
    from distill_ros.executor import SerialExecutor
    from distill_ros.progress import StageProgress

    onnx = run.root / "export" / "policy.onnx"
    if not onnx.is_file():
        raise FileNotFoundError(f"{onnx} does not exist; run `distill-ros export CONFIG` first")
    plan = EvalPlan(cfg, run.root, episodes)
    plan.student_policy()  # a student the config's groups cannot feed is refused here, first
    jobs = []
    for j, task in enumerate(tasks):
        i = task_index(cfg, task, j)
        jobs += [(task, i, who) for who in ("teacher", "student")
                 if who == "student" or (task in cfg.tasks and with_teachers)]
    with StageProgress("eval", [episodes] * len(jobs), "ep", progress_path) as progress:
        rates = (executor or SerialExecutor()).map(plan, jobs, "eval", progress)
    rate = {(task, who): r for (task, _, who), r in zip(jobs, rates)}
    rows = []
    for task in tasks:
        row = {"task": task, "split": "seen" if task in cfg.tasks else "held-out",
               "episodes": episodes, "teacher": None, "teacher_ci": None}
        for who in ("teacher", "student"):
            if (task, who) in rate:
                row[who] = rate[task, who]
                row[f"{who}_ci"] = wilson_interval(round(row[who] * episodes), episodes)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class EvalPlan:
    """One eval job per (task, task's place, ``teacher`` | ``student``): picklable."""

    cfg: Any        # the PipelineConfig
    root: Path      # the run folder
    episodes: int

    def __call__(self, job: tuple[str, int, str]) -> float:
        """Success rate of one policy on one task, on the seeds of the task's place."""
        task, i, who = job
        policy = self.student_policy() if who == "student" else self.teacher_policy(task)
        return success_rate(self.cfg.family, task, policy, self.episodes, self.cfg.eval.seed,
                            i, f"eval {who} {task}", self.views().env_groups)

    def views(self):
        """Which observation groups teacher and student read (`ObservationViews`)."""
        from distill_ros.distill.dagger.views import ObservationViews

        return ObservationViews.of(self.cfg)

    def student_policy(self) -> Policy:
        """The exported student, fed the observation groups it was trained on."""
        from distill_ros.runtime.onnx_policy import OnnxPolicy

        onnx = OnnxPolicy(self.root / "export" / "policy.onnx")
        return self.views().student_policy(onnx.act, onnx.groups.input_names)

    def teacher_policy(self, task: str) -> Policy:
        """`task`'s teacher (the user's, the family's shipped one or the run's own)."""
        from distill_ros.tasks.base import add_user_tasks
        from distill_ros.teachers import load_teacher, teacher_file

        fam = add_user_tasks(self.cfg.family, self.cfg.objects, "objects")  # a fresh worker
        path = teacher_file(self.root, self.cfg.teachers.sources, task, self.cfg.family)
        views = self.views()
        teacher = load_teacher(path, fam.obs_spec, fam.act_spec)
        return views.teacher_policy(fam.teacher_reading(teacher, views.teacher_groups).act)


def evaluate_run(cfg, run_dir: Path, tasks: list[str], episodes: int | None = None,
                 executor=None) -> Path:
    """Evaluate a finished run's export on `tasks` (any objects) without retraining.

    The config may differ from the run's in `held_out`, `eval` and objects the run did not
    train on. Writes `report/eval_<tasks>_n<episodes>_s<seed>/`; returns that folder.
    """
    from distill_ros.rundir import RunDir

    episodes = episodes or cfg.eval.episodes
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if cfg.distill.algorithm == "onestep":
        raise ValueError("eval --held-out needs a single-step ONNX student; the onestep "
                         "algorithm's report (distill-ros eval CONFIG) covers its policies")
    if not (Path(run_dir) / "run.json").is_file():
        raise FileNotFoundError(f"{run_dir} holds no run (no run.json); run `distill-ros run "
                                "CONFIG` first or give its --run-dir")
    from distill_ros.tasks.base import check_tasks, get_family

    check_tasks(get_family(cfg.family), tasks, "--held-out")
    with RunDir(run_dir, cfg, view=lambda d: _trained_on(d, cfg.tasks)) as run:
        if not (run.root / "export" / "policy.onnx").is_file():
            raise FileNotFoundError(f"{run.root / 'export' / 'policy.onnx'} does not exist; "
                                    "run `distill-ros run CONFIG` first")
        rows = evaluate_rows(run, cfg, tasks, episodes, executor=executor,
                             progress_path=run.root / PROGRESS_FILE)
        names = "-".join(tasks)
        if len(names) > 60 or not names.replace("-", "").replace("_", "").isalnum():
            names = hashlib.sha256(names.encode()).hexdigest()[:12]
        folder = run.root / "report" / f"eval_{names}_n{episodes}_s{cfg.eval.seed}"
        write_report(folder, rows, summarize(rows, episodes))
    return folder


def _trained_on(config: dict, tasks: list[str]) -> dict:
    """What a finished run's artefacts depend on: all but held-out objects and eval."""
    d = {k: v for k, v in config.items() if k not in ("held_out", "eval", "objects")}
    d["objects"] = {k: v for k, v in config.get("objects", {}).items() if k in tasks}
    return d


def write_report(report_dir: Path, rows: list[dict], summary: dict) -> None:
    """eval.json, eval.md (a table) and eval.png (grouped bars) in `report_dir`."""
    atomic_write_json(report_dir / "eval.json", {"per_task": rows, "summary": summary})
    atomic_write_text(report_dir / "eval.md", format_table(rows, summary))
    _bar_chart(rows, report_dir / "eval.png")


def format_table(rows: list[dict], summary: dict) -> str:
    """Markdown table of teacher vs student success with 95% intervals, means underneath."""
    lines = ["| task | split | teacher [95% CI] | student [95% CI] | episodes |",
             "|---|---|---|---|---|"]
    for r in rows:
        teacher = "—" if r["teacher"] is None else _rate(r["teacher"], r["teacher_ci"])
        lines.append(f"| {r['task']} | {r['split']} | {teacher} | "
                     f"{_rate(r['student'], r['student_ci'])} | {r['episodes']} |")
    lines.append("")
    if summary["teacher_mean_seen"] is not None:
        lines.append(f"seen: teacher mean {summary['teacher_mean_seen']:.3f}, student mean "
                     f"{summary['student_mean_seen']:.3f} "
                     f"(ratio {summary['student_over_teacher']:.3f})")
    if summary["student_mean_held_out"] is not None:
        lines.append(f"held-out: student mean {summary['student_mean_held_out']:.3f}")
    lines.append(f"episodes per task: {summary['episodes']}; 95% Wilson intervals in brackets")
    return "\n".join(lines) + "\n"


def _rate(rate: float, ci) -> str:
    return f"{rate:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def summarize(rows: list[dict], episodes: int) -> dict:
    """Means over seen and held-out tasks, and the student/teacher ratio on seen ones."""
    seen = [r for r in rows if r["split"] == "seen"]
    held = [r for r in rows if r["split"] == "held-out"]
    t_mean = float(np.mean([r["teacher"] for r in seen])) if seen else None
    s_mean = float(np.mean([r["student"] for r in seen])) if seen else None
    return {
        "teacher_mean_seen": t_mean, "student_mean_seen": s_mean,
        "student_over_teacher": (s_mean / t_mean if t_mean else float("nan")) if seen else None,
        "student_mean_held_out": float(np.mean([r["student"] for r in held])) if held else None,
        "episodes": episodes,
    }


def _bar_chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows) + 2), 3.8))
    for offset, who, label in ((-0.2, "teacher", "teacher (one per task)"),
                               (0.2, "student", "student (one for all, ONNX)")):
        rate = np.array([np.nan if r[who] is None else r[who] for r in rows])
        ci = np.array([r[f"{who}_ci"] or (np.nan, np.nan) for r in rows]).reshape(-1, 2)
        ax.bar(x + offset, rate, 0.4, label=label, yerr=[rate - ci[:, 0], ci[:, 1] - rate],
               capsize=3, error_kw={"elinewidth": 1, "alpha": 0.7})
    ax.set_xticks(x, [r["task"] + ("*" if r["split"] == "held-out" else "") for r in rows],
                  rotation=45, ha="right")
    ax.set_ylim(0, 1.3)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("success rate")
    ax.set_title(f"per-task success over {rows[0]['episodes']} episodes, 95% intervals\n"
                 "(* = held out: no teacher, never in the data)", fontsize="medium")
    ax.legend(loc="upper center", ncol=2, fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)

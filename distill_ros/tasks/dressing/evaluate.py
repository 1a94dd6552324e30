"""Dressing's eval stage: mean dressed ratio of each range's teacher and of the exported student.

The paper's measure ("One Policy to Dress Them All"): the dressed ratio at the end of an
episode. An episode ends at the family's horizon or at its first success (ratio >= 0.8), as
every rollout of this package ends, DAgger's included (so no policy is judged on states its
teachers never labelled). On the same seeds:

- each training range: its own teacher and the student (target: student >= 90% of teacher);
- each held-out task (a held-out pose range, or a training range with the held-out garment):
  the student against the best single teacher there (the paper's point: one policy over all
  poses beats any one expert). The best teacher is picked on selection seeds, apart from the
  eval seeds: every training range's teacher runs the same number of episodes there, and only
  the pick runs on the eval seeds. Picking the best of seven on the very seeds of the
  comparison would bias the teacher's side upward (the maximum of noisy means).

Writes report/eval.json, eval.md (tables) and eval.png (bars). Jobs (one policy on one task)
go through the run's executor.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill_ros.atomic import atomic_write, atomic_write_json, atomic_write_text
from distill_ros.rollout import episode_seed
from distill_ros.tasks.dressing.env import EPISODE_STEPS

TARGET = 0.9          # student / teacher on training ranges


@dataclass(frozen=True)
class Job:
    """One policy (a teacher file, or the student's ONNX file) on one task's seeds."""

    task: str
    policy: str            # "student" or the training range whose teacher acts
    path: str
    seeds: tuple[int, ...]
    purpose: str = "eval"  # "eval" seeds, or "select": picking a held-out task's teacher


def eval_seeds(cfg, task_index: int) -> tuple[int, ...]:
    """The eval seeds of task `task_index` (in `tasks + held_out`): episodes 0..n-1."""
    return tuple(episode_seed(cfg.eval.seed, task_index, ep) for ep in range(cfg.eval.episodes))


def selection_seeds(cfg, task_index: int) -> tuple[int, ...]:
    """As many selection seeds, disjoint from the eval seeds: episodes n..2n-1 of that task."""
    n = cfg.eval.episodes
    return tuple(episode_seed(cfg.eval.seed, task_index, ep) for ep in range(n, 2 * n))


def final_ratio(env, act, seed: int) -> tuple[float, bool]:
    """Final dressed ratio and success of one episode of `act` (batched obs -> actions)."""
    obs, info = env.reset(seed=seed)
    for _ in range(env.max_episode_steps):
        batch = ({k: v[None] for k, v in obs.items()} if isinstance(obs, dict)
                 else obs[None])
        action = np.asarray(act(batch), np.float32).reshape(-1)
        obs, _, terminated, truncated, info = env.step(action)
        if info["is_success"] or terminated or truncated:
            break
    return float(info["dressed_ratio"]), bool(info["is_success"])


def run_job(job: Job) -> dict:
    """The job's episodes: final ratios and successes (an executor job, picklable)."""
    from distill_ros.tasks.base import get_family
    from distill_ros.tasks.dressing.env import DressingEnv

    family = get_family("dressing")  # its layouts, without importing the family module
    if job.policy == "student":
        from distill_ros.runtime.onnx_policy import OnnxPolicy

        student = OnnxPolicy(Path(job.path))
        groups = student.groups
        points = [g.length for g in groups.groups if g.kind == "points"]
        env = (DressingEnv(job.task) if groups.is_flat
               else DressingEnv(job.task, groups=groups.input_names, n_points=points[0])
               if points else DressingEnv(job.task, groups=groups.input_names))
        act = student.act
    else:
        from distill_ros.teachers import load_teacher

        teacher = load_teacher(job.path, family.obs_spec, family.act_spec)
        env, act = DressingEnv(job.task), teacher.act
    try:
        outcomes = [final_ratio(env, act, seed) for seed in job.seeds]
    finally:
        env.close()
    return {"task": job.task, "policy": job.policy, "purpose": job.purpose,
            "ratios": [r for r, _ in outcomes], "successes": [s for _, s in outcomes]}


def teacher_paths(run_root: Path, cfg) -> dict[str, str]:
    """Each training range's teacher file in the run (or its `teachers.sources` entry)."""
    from distill_ros.teachers import teacher_file

    return {t: str(teacher_file(run_root, cfg.teachers.sources, t, cfg.family))
            for t in cfg.tasks}


def plan(run_root: Path, cfg) -> list[Job]:
    """The jobs that need no pick: the eval seeds' and the held-out tasks' selection jobs.

    Training ranges: own teacher and student on the eval seeds. Held-out tasks: the student
    on the eval seeds, and every training range's teacher on the selection seeds.
    """
    student = str(Path(run_root) / "export" / "policy.onnx")
    teachers = teacher_paths(run_root, cfg)
    jobs = []
    for i, task in enumerate(cfg.tasks + cfg.held_out):
        if task in cfg.tasks:
            jobs.append(Job(task, task, teachers[task], eval_seeds(cfg, i)))
        else:
            jobs += [Job(task, who, teachers[who], selection_seeds(cfg, i), "select")
                     for who in cfg.tasks]
        jobs.append(Job(task, "student", student, eval_seeds(cfg, i)))
    return jobs


def pick_teachers(results: list[dict], tasks: list[str], held_out: list[str]
                  ) -> dict[str, tuple[str, dict[str, float]]]:
    """Each held-out task's best single teacher by its selection mean, with every mean.

    Ties go to the first training range in `tasks` order.
    """
    mean = {(r["task"], r["policy"]): float(np.mean(r["ratios"]))
            for r in results if r["purpose"] == "select"}
    picks = {}
    for task in held_out:
        scores = {t: mean[task, t] for t in tasks}
        picks[task] = (max(tasks, key=scores.get), scores)
    return picks


def picked_jobs(run_root: Path, cfg, picks: dict[str, tuple[str, dict]]) -> list[Job]:
    """Each held-out task's picked teacher on that task's eval seeds."""
    teachers = teacher_paths(run_root, cfg)
    order = cfg.tasks + cfg.held_out
    return [Job(task, who, teachers[who], eval_seeds(cfg, order.index(task)))
            for task, (who, _) in picks.items()]


def evaluate_dressing(run, cfg, executor=None) -> dict:
    """The family's eval stage: run the jobs, write report/eval.{json,md,png}.

    Without an `executor`, the config's `executor` kind runs the jobs: `processes` on one
    worker per core this process may use, `ray` as `ray` says, `serial` here; its workers
    stop with the stage.
    """
    from distill_ros.executor import stage_executor

    own = stage_executor(cfg.executor, cfg.ray) if executor is None else nullcontext(executor)
    with own as ex:
        results = ex.map(run_job, plan(run.root, cfg))
        picks = pick_teachers(results, cfg.tasks, cfg.held_out)
        results += ex.map(run_job, picked_jobs(run.root, cfg, picks))
    rows, summary = tabulate(results, cfg.tasks, cfg.held_out)
    report = run.root / "report"
    atomic_write_json(report / "eval.json", {"per_task": rows, "summary": summary,
                                             "episodes": cfg.eval.episodes,
                                             "selection_episodes": cfg.eval.episodes})
    atomic_write_text(report / "eval.md", format_table(rows, summary, cfg.eval.episodes))
    _bar_chart(rows, report / "eval.png", cfg.eval.episodes)
    return summary


def tabulate(results: list[dict], tasks: list[str], held_out: list[str]
             ) -> tuple[list[dict], dict]:
    """Per-task rows (means) and the summary against the issue's two targets.

    A held-out task's teacher is the one `pick_teachers` picks on the selection seeds; its
    ratio in the row is its mean on the eval seeds, the student's seeds. `teacher_ratios` and
    `student_ratios` keep each eval episode's final ratio, in eval-seed order (the same seeds
    for both), so a cell's spread can be read.
    """
    evals = [r for r in results if r["purpose"] == "eval"]
    mean = {(r["task"], r["policy"]): float(np.mean(r["ratios"])) for r in evals}
    each = {(r["task"], r["policy"]): [float(x) for x in r["ratios"]] for r in evals}
    success = {(r["task"], r["policy"]): float(np.mean(r["successes"])) for r in evals}
    rows = []
    for task in tasks:
        teacher, student = mean[task, task], mean[task, "student"]
        rows.append({"task": task, "split": "seen", "teacher": teacher,
                     "teacher_success": success[task, task], "student": student,
                     "student_success": success[task, "student"],
                     "student_over_teacher": student / teacher if teacher > 0 else None,
                     "teacher_ratios": each[task, task], "student_ratios": each[task, "student"]})
    for task, (best, scores) in pick_teachers(results, tasks, held_out).items():
        rows.append({"task": task, "split": "held-out", "selection": scores,
                     "best_teacher": best, "best_teacher_selection": scores[best],
                     "teacher": mean[task, best], "teacher_success": success[task, best],
                     "student": mean[task, "student"],
                     "student_success": success[task, "student"],
                     "teacher_ratios": each[task, best], "student_ratios": each[task, "student"]})
    seen = [r for r in rows if r["split"] == "seen"]
    held = [r for r in rows if r["split"] == "held-out"]
    ratios = [r["student_over_teacher"] for r in seen if r["student_over_teacher"] is not None]
    summary = {
        "teacher_mean_seen": float(np.mean([r["teacher"] for r in seen])) if seen else None,
        "student_mean_seen": float(np.mean([r["student"] for r in seen])) if seen else None,
        "student_over_teacher_min": min(ratios) if ratios else None,
        "seen_at_target": sum(r >= TARGET for r in ratios), "seen": len(seen),
        "student_mean_held_out": float(np.mean([r["student"] for r in held])) if held else None,
        "best_teacher_mean_held_out": (float(np.mean([r["teacher"] for r in held]))
                                       if held else None),
        "held_out_student_beats_best": sum(r["student"] > r["teacher"] for r in held),
        "held_out": len(held),
    }
    return rows, summary


def format_table(rows: list[dict], summary: dict, episodes: int) -> str:
    """Markdown: training ranges (teacher vs student) and held-out tasks (best teacher)."""
    lines = ["| training range | teacher ratio (success) | student ratio (success) | "
             "student / teacher |", "|---|---|---|---|"]
    for r in (r for r in rows if r["split"] == "seen"):
        share = "—" if r["student_over_teacher"] is None else f"{r['student_over_teacher']:.2f}"
        lines.append(f"| {r['task']} | {r['teacher']:.3f} ({r['teacher_success']:.2f}) | "
                     f"{r['student']:.3f} ({r['student_success']:.2f}) | {share} |")
    lines += ["", "| held-out task | best single teacher (selection ratio) | "
              "its ratio (success) | student ratio (success) |", "|---|---|---|---|"]
    for r in (r for r in rows if r["split"] == "held-out"):
        lines.append(f"| {r['task']} | {r['best_teacher']} ({r['best_teacher_selection']:.3f}) "
                     f"| {r['teacher']:.3f} ({r['teacher_success']:.2f}) | "
                     f"{r['student']:.3f} ({r['student_success']:.2f}) |")
    s = summary
    lines += [""]
    if s["seen"]:
        lines.append(f"training ranges: student/teacher >= {TARGET} on {s['seen_at_target']} of "
                     f"{s['seen']} (lowest {s['student_over_teacher_min']:.3f}); means: "
                     f"teacher {s['teacher_mean_seen']:.3f}, student {s['student_mean_seen']:.3f}")
    if s["held_out"]:
        lines.append(f"held out: the student beats the best single teacher on "
                     f"{s['held_out_student_beats_best']} of {s['held_out']}")
    lines.append(f"final dressed ratio, mean of {episodes} episodes per task and policy on the "
                 f"same eval seeds; a held-out task's teacher is the best of every range's "
                 f"teacher on {episodes} other (selection) seeds; an episode ends at success "
                 f"(ratio >= 0.8) or after {EPISODE_STEPS} steps")
    return "\n".join(lines) + "\n"


def _bar_chart(rows: list[dict], path: Path, episodes: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows) + 2), 3.8))
    ax.bar(x - 0.2, [r["teacher"] for r in rows], 0.4,
           label="teacher (own range; held out: best on selection seeds)")
    ax.bar(x + 0.2, [r["student"] for r in rows], 0.4, label="student (points, ONNX)")
    ax.set_xticks(x, [r["task"] + ("*" if r["split"] == "held-out" else "") for r in rows],
                  rotation=45, ha="right")
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("final dressed ratio")
    ax.set_title(f"mean of {episodes} episodes per task (* held out)", fontsize="medium")
    ax.legend(loc="upper center", ncol=2, fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)

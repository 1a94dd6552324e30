"""Evaluation: per-task success of every teacher and of the exported student, same seeds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from distill_ros.atomic import atomic_write, atomic_write_json, atomic_write_text
from distill_ros.checks import in_range, positive
from distill_ros.rollout import Policy, episode_seed, run_episode
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
                 task_index: int, desc: str = "") -> float:
    """Fraction of `episodes` seeded episodes in which `policy` succeeds."""
    env = make_env(family, task)
    try:
        wins = 0
        for ep in tqdm(range(episodes), desc=desc or f"eval {task}", unit="ep", leave=False):
            wins += run_episode(env, policy, episode_seed(seed, task_index, ep)).success
    finally:
        env.close()
    return wins / episodes


def write_report(report_dir: Path, rows: list[dict], summary: dict) -> None:
    """eval.json, eval.md (a table) and eval.png (grouped bars) in `report_dir`."""
    atomic_write_json(report_dir / "eval.json", {"per_task": rows, "summary": summary})
    atomic_write_text(report_dir / "eval.md", format_table(rows, summary))
    _bar_chart(rows, report_dir / "eval.png")


def format_table(rows: list[dict], summary: dict) -> str:
    """Markdown table of teacher vs student success, with the means underneath."""
    lines = ["| task | split | teacher | student |", "|---|---|---|---|"]
    for r in rows:
        teacher = "—" if r["teacher"] is None else f"{r['teacher']:.2f}"
        lines.append(f"| {r['task']} | {r['split']} | {teacher} | {r['student']:.2f} |")
    lines += ["", f"seen: teacher mean {summary['teacher_mean_seen']:.3f}, student mean "
              f"{summary['student_mean_seen']:.3f} (ratio {summary['student_over_teacher']:.3f})"]
    if summary.get("student_mean_held_out") is not None:
        lines.append(f"held-out: student mean {summary['student_mean_held_out']:.3f}")
    lines.append(f"episodes per task: {summary['episodes']}")
    return "\n".join(lines) + "\n"


def summarize(rows: list[dict], episodes: int) -> dict:
    """Means over seen and held-out tasks, and the student/teacher ratio on seen ones."""
    seen = [r for r in rows if r["split"] == "seen"]
    held = [r for r in rows if r["split"] == "held-out"]
    t_mean = float(np.mean([r["teacher"] for r in seen]))
    s_mean = float(np.mean([r["student"] for r in seen]))
    return {
        "teacher_mean_seen": t_mean, "student_mean_seen": s_mean,
        "student_over_teacher": s_mean / t_mean if t_mean > 0 else float("nan"),
        "student_mean_held_out": float(np.mean([r["student"] for r in held])) if held else None,
        "episodes": episodes,
    }


def _bar_chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows) + 2), 3.8))
    teacher = [np.nan if r["teacher"] is None else r["teacher"] for r in rows]
    ax.bar(x - 0.2, teacher, 0.4, label="teacher (one per task)")
    ax.bar(x + 0.2, [r["student"] for r in rows], 0.4, label="student (one for all, ONNX)")
    ax.set_xticks(x, [r["task"] + ("*" if r["split"] == "held-out" else "") for r in rows],
                  rotation=45, ha="right")
    ax.set_ylim(0, 1.3)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("success rate")
    ax.set_title("per-task success (* = held out: no teacher, never in the data)")
    ax.legend(loc="upper center", ncol=2, fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)

"""One job per teacher: train it with SB3 (or take the user's file) and measure its success.

`TeacherPlan(task)` is what an executor runs: picklable, no open handles. A job depends only
on the plan and its task: teacher `i` trains from seed ``seed * TEACHER_SEED_STRIDE + i`` and
is measured on its own seeds, so serial, process and Ray runs write the same checkpoints and
the same `teachers/<task>/eval.json`. Every file is written atomically, and training resumes
from its last checkpoint, so a job killed anywhere and run again writes each file once.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from distill_ros.atomic import atomic_write_json
from distill_ros.config import TEACHER_SEED_STRIDE
from distill_ros.teachers.config import TeacherConfig

log = logging.getLogger(__name__)
TEACHER_EVAL_SEED = 7_000   # teacher self-evaluation seeds, apart from data and final eval


def report_path(root: Path, task: str) -> Path:
    """`teachers/<task>/eval.json` of run folder `root`: a teacher's success, written last."""
    return root / "teachers" / task / "eval.json"


def recorded_success(root: Path, task: str) -> float | None:
    """`task`'s teacher success as measured earlier in run folder `root`, else None."""
    report = report_path(root, task)
    return json.loads(report.read_text())["success"] if report.is_file() else None


@dataclass(frozen=True)
class TeacherPlan:
    """Everything a worker needs to train and measure any teacher of a run."""

    family: str
    tasks: tuple[str, ...]
    seed: int
    teachers: TeacherConfig
    root: Path                                   # the run folder
    objects: dict = field(default_factory=dict)  # the config's own tasks, re-added in workers

    def report_path(self, task: str) -> Path:
        """`teachers/<task>/eval.json`: the teacher's measured success, written last."""
        return report_path(self.root, task)

    def recorded(self, task: str) -> float | None:
        """`task`'s success as measured by an earlier job, else None."""
        return recorded_success(self.root, task)

    def missing(self) -> list[str]:
        """Tasks whose teacher has no measured success yet, in config order."""
        return [t for t in self.tasks if self.recorded(t) is None]

    def teacher_file(self, task: str) -> Path:
        """The user's file for `task`, else the family's shipped one, else the one trained here."""
        from distill_ros.teachers import teacher_file

        return teacher_file(self.root, self.teachers.sources, task, self.family)

    def trains_here(self, task: str) -> bool:
        """Whether `task`'s teacher is trained in this run (no user's or shipped file)."""
        from distill_ros.teachers import trained_teacher_file

        return self.teacher_file(task) == trained_teacher_file(self.root, task)

    def units(self, task: str) -> int:
        """Work the job reports: env steps trained here, then check episodes."""
        trained = self.teachers.timesteps if self.trains_here(task) else 0
        return trained + self.teachers.eval_episodes

    def segments(self, task: str, count: int) -> list[int | None]:
        """`until` of each of `count` jobs that train `task` one after the other (last: None).

        The cuts fall on checkpoints (`checkpoint_every`), where a job resumes the previous
        one's training bit for bit; fewer jobs when there are fewer checkpoints.
        """
        if not self.trains_here(task) or self.teachers.algo not in ("ppo", "sac"):
            return [None]
        every = self.teachers.checkpoint_every
        chunks = -(-self.teachers.timesteps // every)
        count = max(1, min(count, chunks))
        return [round(chunks * k / count) * every for k in range(1, count)] + [None]

    def segment(self, job: tuple[str, int | None]) -> dict:
        """Run one job for an executor: train `job[0]` until `job[1]` steps (None: to the end)."""
        return train_and_measure(self, *job)

    def __call__(self, task: str) -> dict:
        """Run one job for an executor: `train_and_measure(self, task)`."""
        return train_and_measure(self, task)


def train_and_measure(plan: TeacherPlan, task: str, until: int | None = None) -> dict:
    """Train `task`'s teacher unless it is the user's file or done, then measure it.

    With `until`, only train to that many steps (a segment: see `TeacherPlan.segments`).
    """
    from distill_ros.evaluate import success_rate
    from distill_ros.progress import StepsBar
    from distill_ros.tasks.base import add_user_tasks
    from distill_ros.teachers import load_teacher
    from distill_ros.teachers.sb3 import remove_checkpoints
    from distill_ros.teachers.train import train_teacher

    fam = add_user_tasks(plan.family, plan.objects, "objects")  # a fresh worker knows none
    i = plan.tasks.index(task)
    cfg = plan.teachers
    path = plan.teacher_file(task)
    started = time.monotonic()
    train_here = plan.trains_here(task)
    if until is not None and (path.is_file() or not train_here):
        return {"task": task, "until": until, "wall_s": 0.0}  # a segment found done
    if train_here and path.is_file():  # killed between training and its evaluation
        log.info("teacher %s: trained earlier, measuring its success", task)
        remove_checkpoints(path.parent)  # in case the kill came before their removal
    elif train_here:
        trained = train_teacher(plan.family, task, cfg, path.parent,
                                plan.seed * TEACHER_SEED_STRIDE + i, StepsBar(), until)
        if trained is None:
            return {"task": task, "until": until, "wall_s": time.monotonic() - started}
        path = trained
    teacher = load_teacher(path, fam.obs_spec, fam.act_spec)
    success = success_rate(plan.family, task, teacher.act, cfg.eval_episodes,
                           TEACHER_EVAL_SEED + plan.seed, i, f"teacher {task} eval")
    wall = time.monotonic() - started
    atomic_write_json(plan.report_path(task), {"task": task, "success": success,
                                               "source": str(path),
                                               "episodes": cfg.eval_episodes, "wall_s": wall})
    return {"task": task, "success": success, "wall_s": wall}

"""Teachers and their collection as one graph of jobs: no barrier between the two stages.

A task's shards need only that task's teacher, so they start as soon as it is trained, while
the other teachers still train (`schedule.run_graph`). Teachers can also be cut into segments
that end on their checkpoints, one job each, so that a free worker takes the next segment of
any teacher (three equal teachers on two workers take 1.5 teachers' time, not 2). That
needs every resume to be bit-exact (a grasp env replays its episode in a fresh world;
`bench_scale.py` checks the artefacts against a serial run's).
"""

from __future__ import annotations

import math
from typing import Any, Optional

from distill_ros.collect import CollectPlan
from distill_ros.schedule import Node, run_graph
from distill_ros.teachers.jobs import TeacherPlan

#: a teacher is cut into at most this many segments (each resumes a checkpoint: a few
#: tenths of a second for a grasp SAC teacher with its replay buffer)
MAX_SEGMENTS = 4
#: ... and only when that shortens the teachers' schedule by at least this fraction
MIN_GAIN = 0.1
#: Cut teachers into segments where that helps (off: each teacher is one job; both overlap
#: with collect either way)
SEGMENT_TEACHERS = True


def segments_for(teachers: int, slots: int) -> int:
    """Segments per teacher that `train_and_collect` uses (1 when `SEGMENT_TEACHERS` is off)."""
    return segment_count(teachers, slots) if SEGMENT_TEACHERS else 1


def segment_count(teachers: int, slots: int, most: int = MAX_SEGMENTS) -> int:
    """Segments per teacher for `teachers` equal teachers on `slots` workers (1: whole).

    Whole teachers take ⌈n/s⌉ teacher-times; in k segments, ⌈nk/s⌉/k. The smallest k that
    gets the most of that gain is used, if the gain is at least `MIN_GAIN`.
    """
    if teachers <= slots or teachers % slots == 0:
        return 1
    whole = math.ceil(teachers / slots)
    best = min(range(1, most + 1), key=lambda k: (math.ceil(teachers * k / slots) / k, k))
    gain = 1 - math.ceil(teachers * best / slots) / best / whole
    return best if gain >= MIN_GAIN else 1


def teacher_nodes(plan: TeacherPlan, todo: list[str], segments: int) -> list[Node]:
    """Each task's teacher as a chain of segment jobs, on row `i` of the `teachers` bar."""
    nodes = []
    for row, task in enumerate(todo):
        cuts = plan.segments(task, segments)
        for k, until in enumerate(cuts):
            after = (("teacher", task, k - 1),) if k else ()
            nodes.append(Node(("teacher", task, k), plan.segment, (task, until), "teachers",
                              after, "teachers", row, final=until is None))
    return nodes


def last_segment(nodes: list[Node], task: str) -> Optional[tuple]:
    """The key of `task`'s final teacher job among `nodes` (None: its teacher is done)."""
    keys = [n.key for n in nodes if n.key[:2] == ("teacher", task) and n.final]
    return keys[0] if keys else None


def train_and_collect(executor: Any, plan: TeacherPlan, todo: list[str],
                      collect: Optional[CollectPlan], bars: dict) -> list[dict]:
    """Train the `todo` teachers (and collect their shards, if `collect`); teacher results.

    `bars` holds the `teachers` bar (rows: `todo`) and, with `collect`, the `collect` bar
    (rows: `collect.missing()`).
    """
    nodes = teacher_nodes(plan, todo, segments_for(len(todo), executor.slots()))
    if collect is not None:
        for row, (task, k) in enumerate(collect.missing()):
            teacher = last_segment(nodes, task)
            nodes.append(Node(("shard", task, k), collect, (task, k), "collect",
                              (teacher,) if teacher else (), "collect", row))
    results = run_graph(executor, nodes, bars)
    return [results[n.key] for n in nodes if n.key[0] == "teacher" and n.final]

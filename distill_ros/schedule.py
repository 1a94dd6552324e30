"""Jobs that wait for other jobs, run on any executor as soon as what they wait for is done.

A `Node` is one executor job plus the keys of the nodes it waits for (`after`). `run_graph`
keeps at most `executor.slots()` jobs running and, whenever a slot frees, starts the ready
node with the longest chain of nodes still waiting on it (Hu's level rule: a chain that is
started late ends late), earlier nodes first among equals. So a task's collection shards start
as soon as its teacher is trained, while other teachers still train, instead of after the
last teacher (a barrier between the stages leaves workers idle at the end of each).

Results do not depend on the order: every job seeds itself from its own description and
writes atomically, as for `Executor.map`.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Sequence

from distill_ros.executor_ray import POLL_S

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    """One job: `fn(job)` of kind `label` once every node in `after` has returned.

    Its progress goes to row `row` of the bar `bar` (a `StageProgress` given to `run_graph`);
    `final` says whether the row is complete when this node returns (a teacher trained in
    several segments reports to one row; only its last segment completes it).
    """

    key: Hashable
    fn: Callable[[Any], Any]
    job: Any
    label: str
    after: tuple = ()
    bar: str = ""
    row: int = 0
    final: bool = True


def levels(nodes: Sequence[Node]) -> dict[Hashable, int]:
    """Per node, the number of nodes on the longest chain from it to the end (itself: 1)."""
    children: dict[Hashable, list[Hashable]] = {n.key: [] for n in nodes}
    for n in nodes:
        for parent in n.after:
            if parent not in children:
                raise ValueError(f"node {n.key!r} waits for {parent!r}, which is no node")
            children[parent].append(n.key)
    out: dict[Hashable, int] = {}

    def level(key: Hashable, seen: tuple = ()) -> int:
        if key in seen:
            raise ValueError(f"the jobs wait for each other in a cycle through {key!r}")
        if key not in out:
            out[key] = 1 + max((level(c, seen + (key,)) for c in children[key]), default=0)
        return out[key]

    for n in nodes:
        level(n.key)
    return out


def run_graph(executor: Any, nodes: Sequence[Node], bars: Mapping[str, Any] | None = None
              ) -> dict[Hashable, Any]:
    """Run every node on `executor` once what it waits for is done; results by key.

    The first job error is raised here, after the jobs not yet started are cancelled.
    `bars` maps a node's `bar` to its `progress.StageProgress`.
    """
    bars = bars or {}
    rank = levels(nodes)
    index = {n.key: i for i, n in enumerate(nodes)}
    waiting = sorted(nodes, key=lambda n: (-rank[n.key], index[n.key]))
    results: dict[Hashable, Any] = {}
    running: dict[cf.Future, Node] = {}
    slots = executor.slots()
    channel = executor.channel()
    for bar in bars.values():  # after `slots`, which starts Ray: its dashboard is up
        bar.ran_on(executor)
    try:
        while waiting or running:
            for node in _ready(waiting, results, slots - len(running)):
                waiting.remove(node)
                running[executor.submit(node.fn, node.job, node.label, index[node.key],
                                        channel.sink)] = node
            done, _ = cf.wait(list(running), POLL_S, cf.FIRST_COMPLETED)
            _route(channel.take(), nodes, bars)
            for future in done:
                node = running.pop(future)
                if future.exception() is not None:
                    executor.cancel(list(running))
                    raise future.exception()
                results[node.key] = future.result()
                if node.final and node.bar in bars:
                    bars[node.bar].job_done(node.row)
            for bar in bars.values():
                bar.tick()
    finally:
        channel.close()
    return results


def _ready(waiting: list[Node], results: dict, free: int) -> list[Node]:
    """The first `free` waiting nodes (in priority order) whose every `after` has returned."""
    ready = [n for n in waiting if all(k in results for k in n.after)]
    return ready[:max(0, free)]


def _route(items: list, nodes: Sequence[Node], bars: Mapping[str, Any]) -> None:
    """Workers' `(node index, units done)` messages onto the rows of their bars."""
    for i, done in items:
        node = nodes[i]
        if node.bar in bars:
            bars[node.bar].put((node.row, done))

"""Opt-in real-time scheduling: a SCHED_FIFO compute thread and CPU pinning, on real threads."""

import os
import threading

import pytest

from distill_ros.runtime.control_loop import InputTrigger, LoopStats
from distill_ros.runtime.realtime import FifoThread, pin_process, unpin_process

POLICY = ~os.SCHED_RESET_ON_FORK  # sched_getscheduler's policy without that flag


def policy_of(tid: int = 0) -> int:
    return os.sched_getscheduler(tid) & POLICY


def fifo_allowed() -> bool:
    """Whether this process may put a thread under SCHED_FIFO (root, CAP_SYS_NICE, rtprio)."""
    allowed = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            allowed.append(False)
        else:
            allowed.append(True)
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return allowed[0]


def test_the_first_trigger_puts_its_thread_under_fifo_and_leave_undoes_it():
    if not fifo_allowed():
        pytest.skip("this user may not use SCHED_FIFO (needs CAP_SYS_NICE or an rtprio limit)")
    fifo, seen = FifoThread(20), []

    def compute() -> None:
        child = []  # what a thread it starts (a model loader, a planner pool) runs under
        started = threading.Thread(target=lambda: child.append(policy_of()))
        started.start()
        started.join()
        seen.append((threading.get_native_id(), policy_of(),
                     os.sched_getparam(0).sched_priority, child[0]))
    trigger = InputTrigger(compute, LoopStats(window=4), period_s=0.01, min_period_s=0.0,
                           prepare=fifo.enter)
    done, leave = threading.Event(), threading.Event()

    def executor() -> None:  # the thread that delivers inputs, as a node's executor does
        trigger()
        trigger()
        done.set()
        leave.wait(5)
    thread = threading.Thread(target=executor)
    thread.start()
    assert done.wait(5)
    tid = seen[0][0]
    assert seen == [(tid, os.SCHED_FIFO, 20, os.SCHED_OTHER)] * 2, seen
    assert policy_of() == os.SCHED_OTHER, "the calling thread is not the compute one"
    assert fifo.state == f"SCHED_FIFO 20 (thread {tid})"
    fifo.leave()  # from another thread, as a node's deactivate may be
    assert policy_of(tid) == os.SCHED_OTHER
    leave.set()
    thread.join()


def test_leave_after_the_compute_thread_ended_touches_no_thread(monkeypatch):
    """A timer loop's thread ends at stop; its id may then be another thread's (Linux reuses
    ids), so leave() must not reschedule by that id: it would demote a stranger."""
    if not fifo_allowed():
        pytest.skip("this user may not use SCHED_FIFO (needs CAP_SYS_NICE or an rtprio limit)")
    fifo = FifoThread(20)
    thread = threading.Thread(target=fifo.enter)
    thread.start()
    thread.join()
    assert fifo.state.startswith("SCHED_FIFO 20 (thread ")
    calls, real = [], os.sched_setscheduler
    monkeypatch.setattr(os, "sched_setscheduler",
                        lambda *args: calls.append(args) or real(*args))
    fifo.leave()
    assert calls == [], f"leave() rescheduled an ended thread's id: {calls}"
    assert fifo.state == "SCHED_FIFO pending"


def test_priority_zero_leaves_scheduling_alone_and_out_of_range_is_refused():
    fifo = FifoThread(0)
    fifo.enter()
    assert policy_of() == os.SCHED_OTHER and fifo.state == "default scheduling"
    with pytest.raises(ValueError, match="thread_priority must be 0 .off. or 1-99, got 120"):
        FifoThread(120)


def test_pinning_moves_every_running_thread_and_unpinning_gives_the_cpus_back():
    before = os.sched_getaffinity(0)
    cpu = max(before)
    started, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), stop.wait(5)))
    worker.start()
    started.wait(5)
    try:
        previous = pin_process([cpu])
        assert previous == before
        assert os.sched_getaffinity(worker.native_id) == {cpu}, "an already running thread"
        assert os.sched_getaffinity(0) == {cpu}
    finally:
        unpin_process(before)
        stop.set()
        worker.join()
    assert os.sched_getaffinity(0) == before
    assert pin_process([-1]) is None and os.sched_getaffinity(0) == before, "[-1]: any CPU"


def test_a_cpu_this_process_may_not_use_is_named_with_the_ones_it_may():
    allowed = sorted(os.sched_getaffinity(0))
    with pytest.raises(ValueError) as err:
        pin_process([4096])
    assert f"cpu_affinity [4096]: this process may only run on CPUs {allowed}" in str(err.value)
    assert sorted(os.sched_getaffinity(0)) == allowed

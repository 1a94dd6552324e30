"""The chunked runner: executes n_exec actions per plan, re-plans, never runs dry silently."""

import logging
import threading

import numpy as np
import pytest

from distill_ros.runtime.chunked import ChunkedPolicy

OBS_DIM, ACT_DIM, H, N_EXEC = 3, 2, 6, 3


class CountingPlanner:
    """Chunk k holds actions [k, j] for j = 0..H-1; records the history it was given."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls, self.rows, self.gate = 0, [], gate

    def __call__(self, obs, rng):
        if self.gate is not None:
            assert self.gate.wait(5.0), "test planner never released"
        self.rows.append(obs.copy())
        k = self.calls
        self.calls += 1
        chunk = np.stack([np.array([k, j], np.float32) for j in range(H)])
        return chunk[None]


def frame(t: float) -> np.ndarray:
    return np.full(OBS_DIM, t, np.float32)


def test_executes_n_exec_actions_then_replans_with_the_history():
    planner = CountingPlanner()
    policy = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, obs_history=2)
    actions = [policy.act(frame(t)) for t in range(7)]
    assert [tuple(a) for a in actions] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2),
                                           (2, 0)], actions
    assert planner.calls == 3 and policy.stats.replans == 3
    # first plan: the first frame repeats into the missing past; then [t-1, t], oldest first
    np.testing.assert_array_equal(planner.rows[0], np.r_[frame(0), frame(0)][None])
    np.testing.assert_array_equal(planner.rows[1], np.r_[frame(2), frame(3)][None])
    assert policy.stats.late_replans == 0 and policy.stats.starved_ticks == 0
    policy.reset()
    policy.act(frame(9))
    assert policy.stats.replans == 4, "counters are cumulative across episodes"
    np.testing.assert_array_equal(planner.rows[-1], np.r_[frame(9), frame(9)][None])


def test_batch_shaped_observation_gives_batch_shaped_action():
    policy = ChunkedPolicy(CountingPlanner(), OBS_DIM, H, N_EXEC)
    assert policy.act(frame(0)[None]).shape == (1, ACT_DIM)
    with pytest.raises(ValueError, match="observation must have 3 elements"):
        policy.act(np.zeros(4))


def test_slow_synchronous_plan_is_counted_late_and_logged(caplog):
    clock = iter(np.arange(0.0, 100.0, 0.05))   # every clock read advances 50 ms
    policy = ChunkedPolicy(CountingPlanner(), OBS_DIM, H, N_EXEC, control_period_s=1 / 30,
                           clock=lambda: float(next(clock)))
    with caplog.at_level(logging.WARNING, logger="distill_ros.runtime.chunked"):
        for t in range(2 * N_EXEC):
            policy.act(frame(t))
    assert policy.stats.replans == 2 and policy.stats.late_replans == 2, policy.stats
    assert sum("late re-plan" in r.message for r in caplog.records) == 2, caplog.text
    assert policy.diagnostics()["plan_s_max"] == pytest.approx(0.05)


def test_async_plans_every_n_exec_ticks_while_the_old_tail_runs():
    planner = CountingPlanner()
    policy = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, asynchronous=True)
    try:
        actions = []
        for t in range(4 * N_EXEC):
            actions.append(tuple(policy.act(frame(t))))
            policy.wait_planning(5.0)            # an instant planner: arrives next tick
        # plan k is requested at tick k * n_exec; it lands one tick later, so that tick
        # runs the old chunk's tail (index n_exec) and the new chunk starts at index 1
        assert actions == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1),
                           (2, 2), (2, 3), (3, 1), (3, 2)], actions
        assert policy.stats.replans == 4 and policy.stats.late_replans == 0
        np.testing.assert_array_equal(planner.rows[1], frame(3)[None])
    finally:
        policy.close()


def test_async_tail_running_dry_holds_last_action_and_counts_late(caplog):
    gate = threading.Event()
    gate.set()                                   # the cold-start plan is immediate
    planner = CountingPlanner(gate)
    policy = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, asynchronous=True)
    try:
        assert [tuple(policy.act(frame(t))) for t in range(3)] == [(0, 0), (0, 1), (0, 2)]
        gate.clear()                             # plan 1, requested at tick 3, hangs
        with caplog.at_level(logging.WARNING, logger="distill_ros.runtime.chunked"):
            tail = [tuple(policy.act(frame(t))) for t in range(3, 8)]
        assert tail == [(0, 3), (0, 4), (0, 5), (0, 5), (0, 5)], \
            "the old tail runs, then an empty queue holds the last action"
        assert policy.stats.starved_ticks == 2 and policy.stats.late_replans == 1
        assert "queue ran dry" in caplog.text
        gate.set()
        policy.wait_planning(5.0)
        # plan 1 came from the history at tick 3; at tick 8 five steps have passed
        assert tuple(policy.act(frame(8))) == (1, 5)
        assert policy.diagnostics()["late_replans"] == 1
    finally:
        gate.set()
        policy.close()


def test_reset_abandons_a_hung_plan_without_blocking_and_keeps_the_counters():
    gate = threading.Event()
    gate.set()
    planner = CountingPlanner(gate)
    policy = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, asynchronous=True)
    try:
        for t in range(3):
            policy.act(frame(t))
        gate.clear()                              # plan 1 (tick 3) hangs
        for t in range(3, 7):
            policy.act(frame(t))                  # tail, then the queue runs dry
        assert policy.stats.late_replans == 1
        done = threading.Event()
        threading.Thread(target=lambda: (policy.reset(), done.set()), daemon=True).start()
        assert done.wait(2.0), "reset() waited for the hung plan"
        assert policy.stats.late_replans == 1 and policy.stats.starved_ticks == 1
        gate.set()
        first = policy.act(frame(50))             # the hung plan's chunk is dropped
        assert tuple(first) == (2, 0), first
        np.testing.assert_array_equal(planner.rows[-1], frame(50)[None])
        assert policy.diagnostics()["late_replans"] == 1
    finally:
        gate.set()
        policy.close()


def test_seeded_noise_repeats_per_episode():
    seen = []

    def planner(obs, rng):
        seen.append(rng.standard_normal())
        return np.zeros((1, H, ACT_DIM), np.float32)

    policy = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, seed=5)
    policy.act(frame(0))
    policy.reset(seed=5)
    policy.act(frame(0))
    policy.reset(seed=6)
    policy.act(frame(0))
    assert seen[0] == seen[1] != seen[2]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_exec must be in"):
        ChunkedPolicy(CountingPlanner(), OBS_DIM, H, H + 1)
    with pytest.raises(ValueError, match="n_exec must be in"):
        ChunkedPolicy(CountingPlanner(), OBS_DIM, H, 0)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_failing_plan_raises_once_then_the_runner_replans(asynchronous):
    calls = []

    def planner(obs, rng):
        calls.append(len(calls))
        chunk = np.zeros((1, H, ACT_DIM), np.float32) + len(calls)
        if len(calls) == 2:
            chunk[0, 0, 0] = np.nan     # the second plan is broken
        return chunk

    policy = ChunkedPolicy(planner, OBS_DIM, H, N_EXEC, asynchronous=asynchronous)
    try:
        raised = 0
        for t in range(3 * N_EXEC):
            try:
                policy.act(frame(t))
            except ValueError as err:
                assert "NaN/Inf" in str(err)
                raised += 1
            policy.wait_planning(5.0)
        assert raised == 1, "the bad chunk surfaces exactly once"
        assert len(calls) >= 3, "a fresh plan follows the failed one"
        assert np.all(np.isfinite(policy.act(frame(99))))
    finally:
        policy.close()

"""When a node computes: Cadence in timer and input modes (no threads started, no sleeps)."""

import pytest

from distill_ros.runtime.control_loop import Cadence, LoopStats


def make(mode: str, calls: list) -> Cadence:
    return Cadence(mode, lambda: calls.append("step"), lambda: calls.append("watch"),
                   LoopStats(window=10), period_s=0.002, min_period_s=0.0, watch_period_s=0.05)


def test_input_mode_computes_per_input_until_stopped_and_retimes():
    calls = []
    cadence = make("input", calls)
    cadence.on_input()
    cadence.on_input()
    assert calls == ["step", "step"]
    assert cadence.loop.period_s == 0.05, "the input mode's thread is the watchdog"
    cadence.retime(0.001, 0.0005, 0.02)
    assert (cadence.trigger.period_s, cadence.trigger.min_period_s,
            cadence.loop.period_s) == (0.001, 0.0005, 0.02)
    cadence.stop()
    cadence.on_input()
    assert calls == ["step", "step"], "a stopped cadence computed"


def test_timer_mode_ignores_inputs_and_retimes_its_loop():
    calls = []
    cadence = make("timer", calls)
    cadence.on_input()
    assert calls == [] and cadence.trigger is None
    cadence.retime(0.004, 0.002, 0.05)
    assert cadence.loop.period_s == 0.004


def test_an_unknown_trigger_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="trigger must be 'timer' or 'input', got 'event'"):
        make("event", [])

"""Model loading and hot swap without ROS: real tiny ONNX files, loads gated by events."""

import threading

import numpy as np

import pytest

from distill_ros.runtime.model_loader import ModelLoader, open_policy
from distill_ros.runtime.observation import ObservationAssembler
from runtime.tiny_models import ACT, tiny_onnx

RUNNING = "/models/running.onnx"


class Host:
    """What a node gives the loader: a gated load, a swap target and a failure report."""

    def __init__(self) -> None:
        self.release = threading.Event()   # a load blocks until the test releases it
        self.gated = False
        self.installed, self.failures = [], []
        self.accept = True

    def load(self, path):
        if self.gated:
            assert self.release.wait(5), "the test never released the load"
        if "bad" in path:
            raise ValueError(f"{path} cannot be loaded")
        return path

    def swap_in(self, model):
        if self.accept:
            self.installed.append(model)
        return self.accept

    def loader(self) -> ModelLoader:
        return ModelLoader(self.load, self.swap_in,
                           lambda *failure: self.failures.append(failure))


@pytest.fixture
def host():
    return Host()


def test_a_quick_good_load_is_swapped_in_before_the_call_returns(host):
    loader = host.loader()
    assert loader.request("/models/new.onnx", 1.0, RUNNING) == ""
    assert host.installed == ["/models/new.onnx"] and loader.swaps == 1


def test_a_quick_bad_load_is_refused_with_the_reason_and_what_keeps_running(host):
    loader = host.loader()
    reason = loader.request("/models/bad.onnx", 1.0, RUNNING)
    assert "cannot be loaded" in reason and f"still running {RUNNING}" in reason
    assert host.installed == [] and loader.rejected == 1 and host.failures == []


def test_a_slow_load_finishes_in_the_background_and_a_second_change_waits(host):
    loader, host.gated = host.loader(), True
    assert loader.request("/models/new.onnx", 0.01, RUNNING) == "", "accepted at once"
    assert loader.loading == "/models/new.onnx" and host.installed == []
    busy = loader.request("/models/third.onnx", 0.01, RUNNING)
    assert "still loading" in busy
    host.release.set()
    assert loader.wait_idle(5)
    assert host.installed == ["/models/new.onnx"] and loader.loading is None


def test_a_slow_failing_load_is_reported_so_the_caller_can_revert(host):
    loader, host.gated = host.loader(), True
    assert loader.request("/models/bad.onnx", 0.01, RUNNING) == ""
    host.release.set()
    assert loader.wait_idle(5)
    (path, why, running), = host.failures
    assert path == "/models/bad.onnx" and "cannot be loaded" in why and running == RUNNING
    assert loader.rejected == 1 and host.installed == []


def test_a_zero_wait_sends_even_a_quick_load_to_the_background(host):
    loader = host.loader()
    assert loader.request("/models/bad.onnx", 0.0, RUNNING) == ""
    assert loader.wait_idle(5) and len(host.failures) == 1 and loader.rejected == 1


@pytest.mark.parametrize("bad", [False, True])
def test_a_load_finishing_after_invalidate_is_dropped(host, bad):
    loader, host.gated = host.loader(), True
    assert loader.request("/models/bad.onnx" if bad else "/models/new.onnx", 0.01,
                          RUNNING) == ""
    loader.invalidate()                                  # a cleanup while it loads
    host.release.set()
    assert loader.wait_idle(5)
    assert host.installed == [] and host.failures == [] and loader.swaps == 0


def test_a_swap_target_that_is_gone_drops_the_model(host):
    loader, host.accept = host.loader(), False
    assert loader.request("/models/new.onnx", 1.0, RUNNING) == ""
    assert loader.swaps == 0


def test_reverting_marks_only_the_thread_that_reverts(host):
    loader, seen = host.loader(), []
    with loader.revert():
        other = threading.Thread(target=lambda: seen.append(loader.reverting))
        other.start()
        other.join()
        assert loader.reverting
    assert seen == [False] and not loader.reverting


def test_open_policy_checks_sources_actions_and_path(tmp_path):
    path = str(tiny_onnx(tmp_path / "p.onnx"))
    inputs = ObservationAssembler({"palm_x": "ee_x", "palm_z": "ee_z"}, ["obj_x"])
    policy = open_policy(path, False, inputs, ACT)
    assert list(policy.runner.act_spec.names) == list(ACT)
    assert policy.act(np.array([0.2, 0.1, 7.0], np.float32)).tolist() == pytest.approx([0.1, 0.05])
    with pytest.raises(ValueError, match=r"without a source: \['obj_x'\]"):
        open_policy(path, False, ObservationAssembler({"palm_x": "ee_x", "palm_z": "ee_z"},
                                                      []))
    with pytest.raises(ValueError, match="same actions needed for a hot swap"):
        open_policy(path, False, inputs, ["ee_vy", "gripper_opening"])
    with pytest.raises(ValueError, match="model_path is empty"):
        open_policy("", False, inputs)
    with pytest.raises(FileNotFoundError, match="none.onnx does not exist"):
        open_policy(str(tmp_path / "none.onnx"), False, inputs)

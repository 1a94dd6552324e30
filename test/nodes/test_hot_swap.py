"""Hot-swap bookkeeping of policy_inference in this process: loads slower than swap_wait_s.

The node runs on the real DDS backend; only the model loading is replaced, by a function
that sleeps and then returns or raises, so the timing cases are reproducible.
"""

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import importorskip_middleware

importorskip_middleware()

from distill_ros.nodes.policy_inference import Policy, PolicyInference  # noqa: E402

GOOD = "/models/good.onnx"


def fake_policy(path: str) -> Policy:
    runner = SimpleNamespace(path=Path(path), describe=lambda: path, sha256="0")
    return Policy(runner, None, SimpleNamespace(last=None))


@pytest.fixture
def node(_tester_session):
    from distill_ros import ros

    n = PolicyInference()
    n._policy = fake_policy(GOOD)
    n._reverting = threading.get_ident()  # set model_path without triggering a load
    n.set_parameters([ros.Parameter("model_path", value=GOOD),
                      ros.Parameter("swap_wait_s", value=0.05)])
    n._reverting = None
    yield n
    n.destroy_node()


def slow_load(seconds: float, fails: bool):
    def load(path):
        time.sleep(seconds)
        if fails:
            raise ValueError(f"{path} cannot be loaded")
        return fake_policy(path)
    return load


def settle(node, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while node._loading is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert node._loading is None, "the background load never finished"


def set_path(node, path):
    from distill_ros import ros

    return node.set_parameters([ros.Parameter("model_path", value=path)])[0]


@pytest.mark.parametrize("delay_s", [0.06, 0.3])  # just after the wait gives up, and later
def test_a_late_failing_load_reverts_model_path(node, delay_s):
    node._load_policy = slow_load(delay_s, fails=True)
    assert set_path(node, "/models/bad.onnx").successful, "a slow load is accepted first"
    settle(node)
    assert node.get_parameter("model_path").value == GOOD
    assert str(node._policy.runner.path) == GOOD
    assert node._status[0] == "WARN" and "cannot be loaded" in node._status[1]
    assert node._counts["models_rejected"] == 1


def test_a_late_good_load_swaps_in_and_a_second_change_waits(node):
    node._load_policy = slow_load(0.3, fails=False)
    assert set_path(node, "/models/new.onnx").successful
    busy = set_path(node, "/models/third.onnx")
    assert not busy.successful and "still loading" in busy.reason
    settle(node)
    assert str(node._policy.runner.path) == "/models/new.onnx"
    assert node.get_parameter("model_path").value == "/models/new.onnx"


def test_a_load_finishing_after_cleanup_is_dropped(node):
    node._load_policy = slow_load(0.3, fails=False)
    assert set_path(node, "/models/new.onnx").successful
    node._free()                                     # cleanup while it loads
    node._policy = fake_policy("/models/reconfigured.onnx")
    settle(node)
    assert str(node._policy.runner.path) == "/models/reconfigured.onnx"


def test_a_failed_background_load_never_hides_an_error(node):
    node._load_policy = slow_load(0.2, fails=True)
    assert set_path(node, "/models/bad.onnx").successful
    node._status = ("ERROR", "emergency stop: holding")
    settle(node)
    assert node._status == ("ERROR", "emergency stop: holding")

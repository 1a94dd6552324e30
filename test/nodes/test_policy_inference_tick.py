"""The lean parts of a policy_inference tick give exactly what the plain paths give.

The policy call runs on IO-bound arrays (`OnnxPolicy.bound_act`), observations are stored
as the float32 the policy reads, and commands leave as pre-serialised bytes
(`CommandOutput` with `Float64Tail`). Each is checked here against the plain path with real
ONNX Runtime sessions and a real subscription on the backend under test.
"""

import time

import numpy as np
import pytest

from conftest import importorskip_middleware

importorskip_middleware()


def _one_action_in_metadata(path):
    """A tiny policy whose metadata names 1 action while its graph returns 2 (unbindable)."""
    import onnx

    from distill_ros.spec import Spec

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "act_spec":
            prop.value = Spec(("ee_vx",), (-0.5,), (0.5,)).to_json()
    onnx.save(model, str(path))
    return path


def test_bound_act_equals_act_for_flat_grouped_and_unbindable_policies(tmp_path):
    from runtime.tiny_models import tiny_grouped_onnx, tiny_onnx

    from distill_ros.runtime.model_loader import open_policy
    from distill_ros.runtime.observation import ObservationAssembler
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    rng = np.random.default_rng(0)
    flat = OnnxPolicy(tiny_onnx(tmp_path / "flat.onnx"), want_gpu=False)
    mismatch = _one_action_in_metadata(tiny_onnx(tmp_path / "mismatch.onnx"))
    unbindable = OnnxPolicy(mismatch, want_gpu=False)
    for policy, bound in ((flat, True), (unbindable, False)):
        act = policy.bound_act()
        assert act.io_bound == bound
        for _ in range(3):
            obs = rng.normal(size=3).astype(np.float32)
            action = act(obs)
            assert action.shape == (2,)  # what the graph returns
            np.testing.assert_array_equal(action.copy(), policy.act(obs))
    inputs = ObservationAssembler({"palm_x": "ee_x", "palm_z": "ee_z"}, ["obj_x"])
    with pytest.raises(ValueError, match=r"returns shape \(2,\), expected \(1,\)"):
        open_policy(str(mismatch), False, inputs)  # the plain path keeps the readable check

    grouped = OnnxPolicy(tiny_grouped_onnx(tmp_path / "grouped.onnx"), want_gpu=False)
    act = grouped.bound_act()
    assert act.io_bound
    for _ in range(3):
        obs = {"proprio": rng.normal(size=1).astype(np.float32),
               "points": rng.normal(size=(8, 4)).astype(np.float32),
               "cmd": rng.normal(size=3).astype(np.float32),
               "cmd_mask": rng.integers(0, 2, size=3).astype(np.float32)}
        np.testing.assert_array_equal(act(obs).copy(), grouped.act(obs))


def test_an_input_beyond_float32_is_a_non_finite_observation(tmp_path):
    from runtime.tiny_models import tiny_onnx

    from distill_ros.runtime.model_loader import open_policy
    from distill_ros.runtime.observation import ObservationAssembler

    inputs = ObservationAssembler({"palm_x": "ee_x", "palm_z": "ee_z"}, ["obj_x"])
    policy = open_policy(str(tiny_onnx(tmp_path / "p.onnx")), False, inputs)
    with np.errstate(over="ignore"):  # numpy warns of the cast: expected here
        inputs.update_joints(["ee_x", "ee_z"], [0.25, 1e300], 1.0)  # finite, not in float32
    inputs.update_array(["obj_x"], [-0.5], 2.0)
    obs, oldest, newest = policy.inputs.read()
    assert obs.dtype == np.float32 and (oldest, newest) == (1.0, 2.0)
    assert obs[0] == 0.25 and obs[1] == np.inf and obs[2] == -0.5
    assert policy.inputs.non_finite(obs) == ["palm_z (joint ee_z)"]


def test_readers_give_each_policy_its_elements_in_its_order_and_their_own_times():
    from distill_ros.runtime.observation import ObservationAssembler

    inputs = ObservationAssembler({"palm_x": "ee_x", "palm_z": "ee_z"}, ["obj_x", "obj_y"])
    orders = {"stored": ["palm_x", "palm_z", "obj_x", "obj_y"],
              "permuted": ["obj_y", "palm_x", "obj_x", "palm_z"],
              "subset": ["obj_y", "palm_z"]}
    readers = {k: inputs.reader(inputs.layout(names)) for k, names in orders.items()}
    assert readers["subset"]()[1:] == (-np.inf, -np.inf)  # nothing received yet
    inputs.update_joints(["ee_x", "ee_z"], [0.5, -0.25], 1.0)
    inputs.update_array(["obj_x"], [2.0], 3.0)
    inputs.update_array(["obj_y"], [4.0], 2.0)
    value = {"palm_x": 0.5, "palm_z": -0.25, "obj_x": 2.0, "obj_y": 4.0}
    stamp = {"palm_x": 1.0, "palm_z": 1.0, "obj_x": 3.0, "obj_y": 2.0}
    for kind, names in orders.items():
        obs, oldest, newest = readers[kind]()
        assert obs.dtype == np.float32 and obs.tolist() == [value[n] for n in names], kind
        assert (oldest, newest) == (min(stamp[n] for n in names),
                                    max(stamp[n] for n in names)), kind
    first = readers["stored"]()[0]
    inputs.update_joints(["ee_x"], [9.0], 4.0)
    assert first[0] == 0.5, "a read observation is a copy: later inputs do not change it"
    inputs.clear()
    assert readers["permuted"]()[1] == -np.inf, "clear forgets the times readers see"


@pytest.mark.parametrize("labelled", [True, False], ids=["labelled", "data_only"])
def test_commands_sent_as_bytes_arrive_as_the_message_in_controller_order(tester, labelled):
    from distill_ros.nodes.command_output import CommandOutput

    topic = f"/tick_test/commands_{int(labelled)}"
    commands = tester.record("std_msgs/msg/Float64MultiArray", topic)
    output = CommandOutput(tester.node, "float64_multi_array", topic,
                           ["ee_vx", "ee_vy", "gripper_opening"],
                           ["gripper_opening", "ee_vx"], [], "positions", 0.01, labelled)
    tester._made.append(output.publisher)
    assert output._wire is not None, "commands went through the per-message serialiser"
    sent = [np.array([0.25, 9.0, 0.04]), np.array([-0.0, 1.0, np.nan])]
    start = time.monotonic()
    deadline = start + 15
    while len(commands.since(start)) < 2 and time.monotonic() < deadline:
        for command in sent:  # until discovery: the first ones may find no reader yet
            output.publish(command)
        time.sleep(0.05)
    got = [m for _, m in commands.since(start)][-2:]
    assert [[float(v).hex() for v in m.data] for m in got] == [
        [0.04.hex(), 0.25.hex()], [float("nan").hex(), (-0.0).hex()]]
    labels = ["gripper_opening", "ee_vx"] if labelled else []
    assert all([d.label for d in m.layout.dim] == labels for m in got)

"""Tiny real ONNX policies for runtime tests: built with onnx.helper in milliseconds."""

from __future__ import annotations

from pathlib import Path

OBS = ("palm_x", "palm_z", "obj_x")
ACT = ("ee_vx", "gripper_opening")
LOW, HIGH = (-0.5, 0.0), (0.5, 0.08)


def tiny_onnx(path: Path, output: str = "half", obs=OBS, act=ACT) -> Path:
    """A policy file with distill_ros metadata: actions = 0.5 * obs[:2] (``half``) or NaN.

    ``nan``: every action is NaN, whatever the observation.
    """
    import onnx
    from onnx import helper, TensorProto

    from distill_ros.spec import Spec

    n = len(act)
    scale = float("nan") if output == "nan" else 0.5
    graph = helper.make_graph(
        [helper.make_node("Slice", ["obs", "starts", "ends", "axes"], ["part"]),
         helper.make_node("Mul", ["part", "scale"], ["actions"])], "tiny",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", len(obs)])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
         helper.make_tensor("ends", TensorProto.INT64, [1], [n]),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
         helper.make_tensor("scale", TensorProto.FLOAT, [1], [scale])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"obs_spec": Spec(tuple(obs)).to_json(),
            "act_spec": Spec(tuple(act), LOW[:n], HIGH[:n]).to_json(),
            "control_rate_hz": "100", "task_family": "toy"}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path

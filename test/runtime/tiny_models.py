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


POINTS, CHANNELS = 8, ("x", "y", "z", "label")
COMMAND = ("vx", "opening", "yaw")


def tiny_grouped_onnx(path: Path) -> Path:
    """A grouped policy: ``proprio`` (palm_x), ``points`` (8 x xyz+label), ``cmd`` (+mask).

    actions = mean over points of (x, y) + masked (vx, opening) + 0 * palm_x.
    """
    import onnx
    from onnx import helper, TensorProto

    from distill_ros.export.metadata import PolicyMetadata
    from distill_ros.spec import Group, ObsSpec, Spec

    def tensor(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *shape])

    def ints(name, values):
        return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
    nodes = [helper.make_node("ReduceMean", ["points"], ["mean"], axes=[1], keepdims=0),
             helper.make_node("Slice", ["mean", "zero", "two", "axis1"], ["xy"]),
             helper.make_node("Mul", ["cmd", "cmd_mask"], ["masked"]),
             helper.make_node("Slice", ["masked", "zero", "two", "axis1"], ["cmd2"]),
             helper.make_node("Mul", ["proprio", "nought"], ["palm0"]),
             helper.make_node("Add", ["xy", "cmd2"], ["sum"]),
             helper.make_node("Add", ["sum", "palm0"], ["actions"])]
    graph = helper.make_graph(
        nodes, "tiny_grouped",
        [tensor("proprio", [1]), tensor("points", [POINTS, len(CHANNELS)]),
         tensor("cmd", [len(COMMAND)]), tensor("cmd_mask", [len(COMMAND)])],
        [tensor("actions", [len(ACT)])],
        [ints("axis1", [1]), ints("zero", [0]), ints("two", [2]),
         helper.make_tensor("nought", TensorProto.FLOAT, [1], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    groups = ObsSpec((Group("proprio", "vector", Spec(("palm_x",))),
                      Group("points", "points", Spec(CHANNELS), POINTS),
                      Group("cmd", "command", Spec(COMMAND))))
    PolicyMetadata(groups, Spec(ACT, LOW, HIGH), 100.0, "toy").write_into(model)
    onnx.save(model, str(path))
    return path


def cloud_parts(points) -> dict:
    """The PointCloud2 parts of float32 x, y, z, label rows (little endian, unorganised)."""
    import numpy as np

    data = np.asarray(points, np.float32)
    fields = [{"name": c, "offset": 4 * i, "datatype": 7, "count": 1}
              for i, c in enumerate(CHANNELS)]
    return {"fields": fields, "point_step": 16, "data": data.tobytes(), "width": len(data),
            "height": 1, "row_step": 16 * len(data), "is_bigendian": False}

"""A competent humanoid policy file with the student's inputs, built in a second from a teacher.

`teacher_student_onnx` writes pybullet's DeepMimic walk actor (197 -> 1024 -> 512 -> 36) as an
ONNX graph with the grouped inputs a HOVER student has in ``policy_inference``: ``proprio``
(the DeepMimic state without ``phase``, by name), a one-element ``clock`` group (``phase``,
which sim_robot publishes among its features) and a ``command`` group with its mask from
``motion_command``. The command enters the graph times zero: this policy is the teacher
in the student's clothes, competent at walking and deaf to the command. It lets a
cross-process test check the loop with a policy that keeps the humanoid up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def teacher_student_onnx(path: Path, clip: str = "walk", future_steps=(1,)) -> Path:
    """Write the shipped DeepMimic actor of `clip` with proprio/clock/command inputs."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    from distill_ros.export.metadata import PolicyMetadata, Provenance
    from distill_ros.spec import Group, ObsSpec, Spec
    from distill_ros.tasks.humanoid.commands import CommandSpace
    from distill_ros.tasks.humanoid.family import ACT_SPEC, CONTROL_HZ, OBS_SPEC
    from distill_ros.teachers.deepmimic import DeepMimicTeacher

    teacher = DeepMimicTeacher.for_clip(clip)
    space = CommandSpace(tuple(future_steps))
    groups = ObsSpec((Group("proprio", "vector", Spec(OBS_SPEC.names[1:])),
                      Group("clock", "vector", Spec(OBS_SPEC.names[:1])),
                      Group("command", "command", Spec(tuple(space.names())))))
    consts = {"s_mean": teacher.s_mean, "s_std": teacher.s_std, "a_mean": teacher.a_mean,
              "a_std": teacher.a_std, "zero": np.zeros(1, np.float32)}
    for i, (w, b) in enumerate(teacher.weights):
        consts[f"w{i}"], consts[f"b{i}"] = w, b
    nodes = [helper.make_node("Concat", ["clock", "proprio"], ["state"], axis=1),  # phase 1st
             helper.make_node("Sub", ["state", "s_mean"], ["centred"]),
             helper.make_node("Div", ["centred", "s_std"], ["h0"])]
    for i in range(len(teacher.weights)):
        nodes += [helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"z{i}"])]
        if i < len(teacher.weights) - 1:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i + 1}"]))
    last = f"z{len(teacher.weights) - 1}"
    nodes += [helper.make_node("Mul", [last, "a_std"], ["scaled"]),
              helper.make_node("Add", ["scaled", "a_mean"], ["raw"]),
              helper.make_node("Mul", ["command", "command_mask"], ["masked"]),
              helper.make_node("ReduceSum", ["masked"], ["total"], keepdims=1),
              helper.make_node("Mul", ["total", "zero"], ["deaf"]),   # the command: times 0
              helper.make_node("Add", ["raw", "deaf"], ["actions"])]

    def tensor(name: str, size: int):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size])
    graph = helper.make_graph(
        nodes, f"deepmimic_{clip}_as_student",
        [tensor("proprio", OBS_SPEC.dim - 1), tensor("clock", 1),
         tensor("command", space.dim), tensor("command_mask", space.dim)],
        [tensor("actions", ACT_SPEC.dim)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    PolicyMetadata(groups, ACT_SPEC, float(CONTROL_HZ), "humanoid",
                   Provenance(tasks=(clip,), student_arch="deepmimic_teacher")).write_into(model)
    onnx.save(model, str(path))
    return path

"""The one metadata schema: round trips, legacy (version-less) files, newer files refused."""

import onnx
import pytest

from distill_ros.config import StudentConfig
from distill_ros.export.metadata import (SCHEMA_VERSION, VERSION_KEY, Chunking, PolicyMetadata,
                                         Provenance)
from distill_ros.export.onnx_export import export_student
from distill_ros.runtime.model_loader import load_runner
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.spec import Group, ObsSpec, Spec
from distill_ros.students.factory import build_student

ACT = Spec(("a",), (-1.0,), (1.0,))
GROUPED = ObsSpec((Group("state", "vector", Spec(("x",))),
                   Group("cmd", "command", Spec(("g1", "g2")))))


@pytest.mark.parametrize("meta", [
    PolicyMetadata(ObsSpec.flat(Spec(("x", "y"))), ACT, 20.0, "grasp"),
    PolicyMetadata(GROUPED, ACT, 12.5, "toy", Provenance("9.9", "abc", ("t1", "t2"), "mlp")),
    PolicyMetadata(ObsSpec.flat(Spec(("x",))), ACT, 10.0, "grasp", chunking=Chunking(8, 4, 2)),
])
def test_props_round_trip(meta):
    props = meta.to_props()
    assert props[VERSION_KEY] == str(SCHEMA_VERSION)
    assert all(isinstance(v, str) for v in props.values())
    assert PolicyMetadata.from_props(props, "x.onnx") == meta


def test_command_inputs_are_described_with_their_mask():
    meta = PolicyMetadata(GROUPED, ACT, 12.5, "toy")
    assert meta.input_names() == ["state", "cmd", "cmd_mask"]
    assert "cmd_mask: (B, 2)" in meta.to_props()["inputs"]


def test_version_less_props_read_as_version_1():
    props = PolicyMetadata(ObsSpec.flat(Spec(("x",))), ACT, 20.0, "grasp").to_props()
    del props[VERSION_KEY]
    props["obs_spec"] = Spec(("x",)).to_json()     # the flat JSON of files before groups
    meta = PolicyMetadata.from_props(props, "old.onnx")
    assert meta.version == 1 and meta.obs == ObsSpec.flat(Spec(("x",)))


def test_newer_schema_is_refused_with_version_and_fix(tmp_path):
    torch_student = build_student(StudentConfig(hidden=[4]), GROUPED, ACT)
    path = tmp_path / "future.onnx"
    export_student(torch_student, path, PolicyMetadata(GROUPED, ACT, 10.0, "toy"))
    model = onnx.load(path)
    for p in model.metadata_props:
        if p.key == VERSION_KEY:
            p.value = str(SCHEMA_VERSION + 1)
    onnx.save(model, path)
    with pytest.raises(ValueError, match=rf"future.onnx has metadata schema version "
                                         rf"{SCHEMA_VERSION + 1}.*upgrade distill_ros"):
        OnnxPolicy(path)
    with pytest.raises(ValueError, match="upgrade distill_ros"):
        PolicyMetadata.read(path)
    with pytest.raises(ValueError, match="upgrade distill_ros"):
        load_runner(str(path), use_gpu=False)       # the node's loader reads it the same way


@pytest.mark.parametrize("key, value, text", [
    ("control_rate_hz", "fast", "malformed metadata"),
    ("obs_spec", "{not json", "malformed metadata"),
    (VERSION_KEY, "two", "must be an integer"),
])
def test_malformed_metadata_names_the_file(key, value, text):
    props = PolicyMetadata(GROUPED, ACT, 12.5, "toy").to_props()
    props[key] = value
    with pytest.raises(ValueError, match=f"bad.onnx.*{text}"):
        PolicyMetadata.from_props(props, "bad.onnx")

"""Grouped observation specs: shapes, JSON round trips, flat compatibility, checks."""

import numpy as np
import pytest

from distill_ros.spec import FLAT_GROUP, Group, ObsSpec, Spec


def _grouped() -> ObsSpec:
    return ObsSpec((
        Group("state", "vector", Spec(("x", "y"), (-1.0, -2.0), (1.0, 2.0), "m")),
        Group("cloud", "points", Spec(("x", "y", "z", "label"), units="m, label 0/1"), 32),
        Group("past", "history", Spec(("vx", "vy")), 3),
        Group("cmd", "command", Spec(("goal_x", "goal_y", "yaw"))),
    ))


def test_shapes_and_inputs_follow_the_kinds():
    spec = _grouped()
    assert spec.input_names == ("state", "cloud", "past", "cmd", "cmd_mask")
    assert spec.input_shapes() == {"state": (2,), "cloud": (32, 4), "past": (3, 2),
                                   "cmd": (3,), "cmd_mask": (3,)}
    assert [g.size for g in spec.groups] == [2, 128, 6, 3]
    assert not spec.is_flat


def test_json_round_trip_keeps_every_field():
    spec = _grouped()
    again = ObsSpec.from_json(spec.to_json())
    assert again == spec
    assert again.group("state").channels.low == (-1.0, -2.0)
    assert again.group("cloud").channels.units == "m, label 0/1"


def test_flat_spec_json_loads_as_one_vector_group():
    flat = Spec(("a", "b", "c"), units="m")
    spec = ObsSpec.from_json(flat.to_json())   # what files before groups hold
    assert spec.is_flat and spec.input_names == (FLAT_GROUP,)
    assert spec.groups[0].channels == flat
    assert spec == ObsSpec.of(flat) == ObsSpec.of(spec)


@pytest.mark.parametrize("kwargs, text", [
    ({"name": "bad name", "kind": "vector"}, "Python identifier"),
    ({"name": "act", "kind": "vector"}, "Python identifier"),
    ({"name": "g", "kind": "image"}, "kind must be one of"),
    ({"name": "g", "kind": "points"}, "needs length >= 1"),
    ({"name": "g", "kind": "vector", "length": 4}, "takes no length"),
    ({"name": "g", "kind": "vector", "dtype": "float64"}, "dtype must be"),
])
def test_bad_groups_are_refused_with_the_field(kwargs, text):
    with pytest.raises(ValueError, match=text):
        Group(channels=Spec(("a",)), **kwargs)


def test_duplicate_input_names_are_refused():
    a = Group("cmd", "command", Spec(("a",)))
    b = Group("cmd_mask", "vector", Spec(("b",)))
    with pytest.raises(ValueError, match="unique"):
        ObsSpec((a, b))


def test_check_arrays_names_the_input_and_the_expected_shape():
    spec = _grouped()
    good = {n: np.zeros((5, *s), np.float32) for n, s in spec.input_shapes().items()}
    spec.check_arrays(good, "here")
    with pytest.raises(ValueError, match=r"missing \['cmd_mask'\]"):
        spec.check_arrays({k: v for k, v in good.items() if k != "cmd_mask"}, "here")
    with pytest.raises(ValueError, match=r"'cloud' has shape \(5, 31, 4\), expected \(B, 32, 4\)"):
        spec.check_arrays({**good, "cloud": np.zeros((5, 31, 4))}, "here")


def test_check_same_names_both_layouts():
    with pytest.raises(ValueError, match="shard.npz: observation layout differs.*cloud"):
        _grouped().check_same(ObsSpec.flat(Spec(("x",))), "shard.npz")

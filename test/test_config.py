"""Config loading refuses bad input with the file, the key and the fix."""

import pytest

from conftest import write_config
from distill_ros.config import load_config


def test_valid_config_loads_and_hash_is_stable(tmp_path):
    a = load_config(write_config(tmp_path / "a.yaml"))
    b = load_config(write_config(tmp_path / "b.yaml"))
    assert a.tasks == ["cube", "lego"] and a.teachers.timesteps == 2000
    assert a.digest() == b.digest()
    c = load_config(write_config(tmp_path / "c.yaml", seed=1))
    assert c.digest() != a.digest(), "the hash must change with any setting"


@pytest.mark.parametrize("overrides, message", [
    ({"teachers": {"timestep": 5}}, r"unknown key\(s\) \['teachers.timestep'\]"),
    ({"tasks": ["cube", "spoon"]}, r"tasks: unknown task\(s\) \['spoon'\].*valid choices"),
    ({"held_out": ["cube"]}, r"held_out tasks must not be in tasks"),
    ({"family": "laundry"}, r"unknown task family 'laundry'"),
    ({"distill": {"epochs": "ten"}}, r"distill.epochs must be int, got 'ten'"),
    ({"student": {"arch": "rnn"}}, r"student.arch must be one of \['mlp', 'transformer'\]"),
    ({"collect": {"keep": "some"}}, r"collect.keep must be one of"),
    ({"teachers": {"sources": {"spoon": "x.zip"}}}, r"teachers.sources: unknown task"),
])
def test_bad_config_names_file_key_and_choices(tmp_path, overrides, message):
    path = write_config(tmp_path / "bad.yaml", **overrides)
    with pytest.raises(ValueError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value), "the message must name the file"


def test_missing_required_key_and_broken_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nfamily: grasp\n")
    with pytest.raises(ValueError, match="missing required key 'tasks'"):
        load_config(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="config/grasp_quick.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_configs_load():
    from conftest import REPO

    for path in sorted((REPO / "config").glob("grasp*.yaml")):
        assert load_config(path).family == "grasp", path


def test_exponent_without_a_dot_is_a_number_and_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nfamily: grasp\ntasks: [cube]\ndistill:\n  learning_rate: 1e-3\n")
    assert load_config(path).distill.learning_rate == 0.001
    path.write_text("name: t\nfamily: grasp\ntasks: [cube\n")
    with pytest.raises(ValueError, match="c.yaml"):
        load_config(path)

"""Config loading refuses bad input with the file, the key and the fix."""

import dataclasses
import typing
from pathlib import Path

import pytest

from conftest import write_config
from distill_ros.config import load_config

REPO = Path(__file__).resolve().parents[1]


def test_valid_config_loads_and_hash_is_stable(tmp_path):
    a = load_config(write_config(tmp_path / "a.yaml"))
    b = load_config(write_config(tmp_path / "b.yaml"))
    assert a.tasks == ["cube", "lego"] and a.teachers.timesteps == 2000
    assert a.digest() == b.digest()
    c = load_config(write_config(tmp_path / "c.yaml", seed=1))
    assert c.digest() != a.digest(), "the hash must change with any setting"


def test_a_setting_added_later_leaves_older_runs_resumable_while_unset(tmp_path):
    """`student.points_origin` came later: unset, a config hashes as before it existed.

    A run folder records its config's hash, and a changed hash refuses to resume it.
    """
    a = load_config(write_config(tmp_path / "a.yaml"))
    assert "points_origin" not in a.to_dict()["student"]
    assert a.digest() == "e7325a19287af62a", "this config's hash before points_origin existed"
    b = load_config(write_config(tmp_path / "b.yaml", student={"points_origin": "proprio"}))
    assert b.to_dict()["student"]["points_origin"] == "proprio" and b.digest() != a.digest()


@pytest.mark.parametrize("key", ["points_origin", "points_frame"])
def test_points_origin_must_be_a_group_the_dagger_student_reads(tmp_path, key):
    """A typo stops at load, before the teachers train, naming the groups to pick from."""
    import yaml

    data = yaml.safe_load((REPO / "config" / "dressing_quick.yaml").read_text())
    data["student"].pop("points_origin", None)
    data["student"].pop("points_frame", None)
    data["student"][key] = "propio"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=rf"typo.yaml: student.{key} 'propio' is not "
                                         r"a group the student reads .*'points', 'proprio'"):
        load_config(path)
    data["student"][key] = "proprio"
    path.write_text(yaml.safe_dump(data))
    assert getattr(load_config(path).student, key) == "proprio"


def test_points_frame_needs_a_family_that_names_its_action_vectors(tmp_path):
    """Grasping's action is not declared as world-frame vectors: refused at load."""
    with pytest.raises(ValueError, match=r"points_frame needs a family .*'grasp' does not"):
        load_config(write_config(tmp_path / "g.yaml", student={"points_frame": "proprio"}))


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


@pytest.mark.parametrize("overrides, message", [
    ({"seed": -1}, r"seed must be in \[0, 4294967295\], got -1"),
    ({"seed": 2**32}, r"seed must be in \[0, 4294967295\], got 4294967296"),
    ({"seed": 5_000_000}, r"seed must be <= 4294967 when teachers are trained here"),
    ({"student": {"hidden": [256, -3]}}, r"student.hidden must list values > 0, got \[256, -3\]"),
    ({"teachers": {"gamma": 7}}, r"teachers.gamma must be in \(0, 1\], got 7"),
    ({"teachers": {"gamma": 0}}, r"teachers.gamma must be in \(0, 1\], got 0"),
])
def test_out_of_range_values_stop_at_load_naming_key_and_file(tmp_path, overrides, message):
    path = write_config(tmp_path / "bad.yaml", **overrides)
    with pytest.raises(ValueError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value), "the message must name the file"


def test_a_range_error_stops_the_cli_before_any_work(tmp_path, capsys):
    from distill_ros.cli import main

    path = write_config(tmp_path / "bad.yaml", student={"hidden": [256, -3]})
    code = main(["run", str(path), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{path}: student.hidden must list values > 0" in err, err
    assert not (tmp_path / "run").exists(), "nothing may be written before the config is valid"


def _numeric_keys(cls, prefix):
    """Dotted keys of every number or list-of-numbers field of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    numbers = (int, float, list[int], list[float])
    return [(f"{prefix}.{f.name}", hints[f.name]) for f in dataclasses.fields(cls)
            if hints[f.name] in numbers]


def test_every_number_of_every_section_is_range_checked(tmp_path):
    """A negative value anywhere is refused at load, naming the dotted key and the file."""
    from distill_ros.config import PipelineConfig
    from distill_ros.distill import get_algorithm

    hints = typing.get_type_hints(PipelineConfig)
    keys = [("seed", int), ("threads", int)]
    for name in ("teachers", "collect", "student", "distill", "export", "eval"):
        keys += _numeric_keys(hints[name], name)
    keys += _numeric_keys(get_algorithm("onestep").config_cls, "onestep")
    assert len(keys) > 40, keys
    for key, hint in keys:
        section, _, name = key.partition(".")
        bad = -1 if hint in (int, float) else [-1]
        overrides = {section: {name: bad}} if name else {section: bad}
        if section == "onestep":
            overrides["distill"] = {"algorithm": "onestep"}
        path = write_config(tmp_path / "bad.yaml", **overrides)
        with pytest.raises(ValueError) as err:
            load_config(path)
        assert str(path) in str(err.value) and key in str(err.value), f"{key}: {err.value}"

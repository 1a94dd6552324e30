"""Users' own grasp objects (`objects:` in a config): checked at load, then real tasks."""

import numpy as np
import pytest
import torch

from conftest import write_config
from distill_ros.config import load_config
from distill_ros.tasks.base import get_family, make_env
from distill_ros.teachers.scripted import ScriptedGraspExpert

EXPERT = ScriptedGraspExpert()


def scripted_grasp(obs):
    with torch.no_grad():
        return EXPERT(torch.from_numpy(obs[None])).numpy()[0]


def _config(tmp_path, objects, tasks=("cube", "mybox")):
    return write_config(tmp_path / "c.yaml", tasks=list(tasks), held_out=[], objects=objects)


def test_a_mesh_and_a_urdf_become_tasks_the_scripted_expert_can_grasp(tmp_path):
    mesh = {"path": "cube.obj", "scale": 0.05}          # pybullet_data's 1 m cube -> 5 cm
    urdf = {"path": "random_urdfs/050/050.urdf", "scale": 0.6}
    cfg = load_config(_config(tmp_path, {"mybox": mesh, "rand050": urdf},
                              ("cube", "mybox", "rand050")))
    assert {"mybox", "rand050"} <= set(get_family("grasp").tasks)
    assert cfg.to_dict()["objects"]["mybox"] == mesh, "objects are part of the config hash"
    for task, half in (("mybox", 0.025), ("rand050", None)):
        env = make_env("grasp", task)
        wins = 0
        for seed in range(4):
            obs, _ = env.reset(seed=seed)
            if half is not None:   # the observation measures the user's object as scaled
                assert np.all(obs[10:12] >= half - 1e-3)
                assert obs[12] == pytest.approx(half, abs=3e-3)
            for _ in range(env.max_episode_steps):
                obs, _, _, trunc, info = env.step(scripted_grasp(obs))
                if info["is_success"] or trunc:
                    break
            wins += info["is_success"]
        env.close()
        assert wins >= 3, f"the scripted expert lifts {task} in {wins}/4 episodes"


def test_objects_without_the_key_keep_the_old_config_hash(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml"))
    assert "objects" not in cfg.to_dict()


@pytest.mark.parametrize("spec, exc, message", [
    ({"path": "no/such.urdf"}, FileNotFoundError,
     r"objects\.mybox\.path: no/such\.urdf does not exist"),
    ({"path": "cube.obj", "scale": 0.5}, ValueError,
     r"objects\.mybox\.scale 0\.5 makes mybox \(.*cube\.obj\) 0\.50\d m across"
     r".*use a scale of at most 0\.079"),
    ({"path": "cube.obj", "scale": -1}, ValueError,
     r"objects\.mybox\.scale must be a number > 0, got -1\.0 \(file .*cube\.obj\)"),
    ({"path": "cube.obj", "scale": 0.001}, ValueError,
     r"objects\.mybox\.scale 0\.001 makes mybox .* 0\.005 m long"),
    ({"path": "duck.mtl"}, ValueError, r"objects\.mybox\.path: duck\.mtl is not a URDF or mesh"),
    ({"scale": 1.0}, ValueError, r"missing required key 'objects\.mybox\.path'"),
    ({"path": "cube.obj", "size": 1}, ValueError, r"unknown key\(s\) \['objects\.mybox\.size'\]"),
])
def test_bad_objects_name_key_file_and_fix_at_load(tmp_path, spec, exc, message):
    path = _config(tmp_path, {"mybox": spec})
    with pytest.raises(exc, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value), "the config file is named"


def test_a_user_object_may_not_shadow_a_built_in_one(tmp_path):
    with pytest.raises(ValueError, match=r"objects\.duck: 'duck' is a built-in object"):
        load_config(_config(tmp_path, {"duck": {"path": "cube.obj", "scale": 0.05}},
                            ("cube",)))

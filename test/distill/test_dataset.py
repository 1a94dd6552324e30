"""Dataset shards: round trip, and refusal of NaN, truncation and foreign layouts."""

import numpy as np
import pytest

from distill_ros.distill.dataset import load_dataset, read_shard, write_shard
from distill_ros.rollout import Episode
from distill_ros.spec import Group, ObsSpec, Spec
from distill_ros.tasks.base import get_family

FAM = get_family("grasp")


def _episodes(n=3, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    return [Episode(rng.normal(size=(steps, FAM.obs_spec.dim)).astype(np.float32),
                    rng.normal(size=(steps, FAM.act_spec.dim)).astype(np.float32),
                    success=bool(i % 2 == 0), seed=100 + i) for i in range(n)]


def test_round_trip_keeps_successful_episodes_only(tmp_path):
    eps = _episodes()
    path = tmp_path / "cube" / "shard_0000.npz"
    path.parent.mkdir()
    stored = write_shard(path, eps, "cube", FAM.obs_spec, FAM.act_spec, keep="success")
    d = read_shard(path, FAM.obs_spec, FAM.act_spec)
    kept = [e for e in eps if e.success]
    assert stored == len(d["obs"]) == sum(len(e.obs) for e in kept)
    np.testing.assert_array_equal(d["obs"], np.concatenate([e.obs for e in kept]))
    np.testing.assert_array_equal(d["act"], np.concatenate([e.act for e in kept]))
    assert d["seeds"].tolist() == [100, 101, 102] and d["successes"].tolist() == [1, 0, 1]
    obs, act, idx = load_dataset(tmp_path, ["cube"], FAM.obs_spec, FAM.act_spec)
    assert obs.shape == (stored, FAM.obs_spec.dim) and set(idx.tolist()) == {0}


def test_shard_where_every_episode_failed_loads_empty_and_the_dataset_says_why(tmp_path):
    eps = _episodes()
    for e in eps:
        e.success = False
    path = tmp_path / "cube" / "shard_0000.npz"
    path.parent.mkdir()
    assert write_shard(path, eps, "cube", FAM.obs_spec, FAM.act_spec, keep="success") == 0
    d = read_shard(path, FAM.obs_spec, FAM.act_spec)
    assert d["obs"].shape == (0, FAM.obs_spec.dim) and d["act"].shape == (0, FAM.act_spec.dim)
    assert d["successes"].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="holds no steps: the teachers succeeded in no episode"):
        load_dataset(tmp_path, ["cube"], FAM.obs_spec, FAM.act_spec)


def test_nan_in_shard_names_file_field_and_fix(tmp_path):
    eps = _episodes()
    eps[0].obs[2, 5] = np.nan
    path = tmp_path / "shard_0000.npz"
    write_shard(path, eps, "cube", FAM.obs_spec, FAM.act_spec, keep="all")
    with pytest.raises(ValueError, match=r"shard_0000.npz: field 'obs.obs' contains NaN/Inf "
                                         r"at row 2"
                                         r", column 5; delete .* rerun `distill-ros collect`"):
        read_shard(path, FAM.obs_spec, FAM.act_spec)


def test_truncated_shard_is_refused(tmp_path):
    path = tmp_path / "shard_0000.npz"
    write_shard(path, _episodes(), "cube", FAM.obs_spec, FAM.act_spec, keep="all")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="shard_0000.npz cannot be read"):
        read_shard(path, FAM.obs_spec, FAM.act_spec)


def test_foreign_layout_is_refused(tmp_path):
    other = Spec(tuple(f"x{i}" for i in range(FAM.obs_spec.dim)))
    path = tmp_path / "shard_0000.npz"
    write_shard(path, _episodes(), "cube", other, FAM.act_spec, keep="all")
    with pytest.raises(ValueError, match="observation layout differs"):
        read_shard(path, FAM.obs_spec, FAM.act_spec)


def test_missing_shards_say_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="distill-ros collect"):
        load_dataset(tmp_path, ["cube"], FAM.obs_spec, FAM.act_spec)


GROUPED = ObsSpec((Group("state", "vector", Spec(("x", "y"))),
                   Group("cloud", "points", Spec(("x", "y", "z", "label")), 8),
                   Group("cmd", "command", Spec(("gx", "gy")))))


def _grouped_episodes(n=2, steps=4):
    rng = np.random.default_rng(3)
    return [Episode({k: rng.normal(size=(steps, *s)).astype(np.float32)
                     for k, s in GROUPED.input_shapes().items()},
                    rng.normal(size=(steps, FAM.act_spec.dim)).astype(np.float32), True, i)
            for i in range(n)]


def test_grouped_round_trip_stores_each_group_under_its_key(tmp_path):
    eps = _grouped_episodes()
    path = tmp_path / "cube" / "shard_0000.npz"
    path.parent.mkdir()
    assert write_shard(path, eps, "cube", GROUPED, FAM.act_spec, keep="all") == 8
    with np.load(path) as z:
        assert {"obs.state", "obs.cloud", "obs.cmd", "obs.cmd_mask"} <= set(z.files)
        assert ObsSpec.from_json(str(z["obs_spec"])) == GROUPED
    d = read_shard(path, GROUPED, FAM.act_spec)
    for name in GROUPED.input_names:
        np.testing.assert_array_equal(d["obs"][name], np.concatenate([e.obs[name] for e in eps]))
    obs, act, _ = load_dataset(tmp_path, ["cube"], GROUPED, FAM.act_spec)
    assert obs["cloud"].shape == (8, 8, 4) and act.shape == (8, FAM.act_spec.dim)
    with pytest.raises(ValueError, match="observation layout differs.*cloud"):
        read_shard(path, FAM.obs_spec, FAM.act_spec)


def test_grouped_nan_names_the_group_key(tmp_path):
    eps = _grouped_episodes()
    eps[1].obs["cloud"][0, 3, 2] = np.inf
    path = tmp_path / "shard_0000.npz"
    write_shard(path, eps, "cube", GROUPED, FAM.act_spec, keep="all")
    with pytest.raises(ValueError, match=r"field 'obs.cloud' contains NaN/Inf at row 4"):
        read_shard(path, GROUPED, FAM.act_spec)

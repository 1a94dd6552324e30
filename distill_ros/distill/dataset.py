"""Teacher-rollout datasets: npz shards, written once and validated on every load."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Union

import numpy as np

from distill_ros.atomic import atomic_savez
from distill_ros.spec import ObsSpec, Spec

SHARD_FIELDS = ("act", "episode", "seeds", "successes", "obs_spec", "act_spec", "task")
#: a step's observations: one flat array (a `Spec` layout) or arrays by input name (`ObsSpec`)
Obs = Union[np.ndarray, dict]


def obs_key(name: str) -> str:
    """The shard key of an observation input (``obs.<input>``; files before groups: ``obs``)."""
    return f"obs.{name}"


def take(obs: Obs, index) -> Obs:
    """Rows `index` of a flat array or of every array of a dict."""
    return {k: v[index] for k, v in obs.items()} if isinstance(obs, dict) else obs[index]


def _concat(parts: list, spec: ObsSpec) -> dict:
    """Concatenate per-episode observations into arrays by input name."""
    shapes = spec.input_shapes()
    if not parts:
        return {n: np.zeros((0, *s), np.float32) for n, s in shapes.items()}
    dicts = [p if isinstance(p, dict) else {spec.input_names[0]: p} for p in parts]
    return {n: np.concatenate([d[n] for d in dicts]).astype(np.float32) for n in shapes}


def write_shard(path: Path, episodes: list, task: str, obs_spec: Union[Spec, ObsSpec],
                act_spec: Spec, keep: str) -> int:
    """Write the kept episodes of one shard atomically; returns the number of steps stored.

    Each observation input goes under its own key (`obs_key`) beside the grouped spec;
    an episode's ``obs`` is one array (flat spec) or a dict of arrays by input name.
    """
    spec = ObsSpec.of(obs_spec)
    kept = [e for e in episodes if keep == "all" or e.success]
    obs = _concat([e.obs for e in kept], spec)
    act = [e.act for e in kept] or [np.zeros((0, act_spec.dim), np.float32)]
    ep_ids = [np.full(len(e.act), i, np.int32) for i, e in enumerate(kept)] or [np.zeros(0)]
    atomic_savez(
        path, **{obs_key(n): v for n, v in obs.items()},
        act=np.concatenate(act).astype(np.float32),
        episode=np.concatenate(ep_ids).astype(np.int32),
        seeds=np.array([e.seed for e in episodes], np.int64),
        successes=np.array([e.success for e in episodes], bool),
        obs_spec=np.array(spec.to_json()), act_spec=np.array(act_spec.to_json()),
        task=np.array(task))
    return sum(len(e.act) for e in kept)


def read_shard(path: Path, obs_spec: Union[Spec, ObsSpec], act_spec: Spec) -> dict:
    """Load one shard, refusing truncation, wrong layouts and NaN with the file and field.

    ``data["obs"]`` is what was asked for: one array for a `Spec`, arrays by input name for
    an `ObsSpec`. Shards written before groups (one ``obs`` array) load as one group.
    """
    fix = f"delete {path} and rerun `distill-ros collect` to regenerate it"
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"dataset shard {path} cannot be read ({err}); {fix}") from None
    missing = [k for k in SHARD_FIELDS if k not in data]
    if missing:
        raise ValueError(f"dataset shard {path} lacks field(s) {missing}; {fix}")
    spec = ObsSpec.of(obs_spec)
    spec.check_same(ObsSpec.from_json(str(data["obs_spec"])), str(path))
    Spec.from_json(str(data["act_spec"])).check_same(act_spec, "action", str(path))
    legacy = "obs" in data and spec.is_flat    # before groups: the one array was "obs"
    keys = {n: "obs" if legacy else obs_key(n) for n in spec.input_names}
    absent = [k for k in keys.values() if k not in data]
    if absent:
        raise ValueError(f"dataset shard {path} lacks field(s) {absent}; {fix}")
    n = len(data["episode"])
    shapes = {**{keys[k]: s for k, s in spec.input_shapes().items()}, "act": (act_spec.dim,)}
    for key, shape in shapes.items():
        arr = data[key]
        if arr.shape != (n, *shape):
            raise ValueError(f"dataset shard {path}: field {key!r} has shape {arr.shape}, "
                             f"expected {(n, *shape)}; {fix}")
        bad = np.argwhere(~np.isfinite(arr.reshape(n, int(np.prod(shape)))))  # n may be 0
        if len(bad):
            raise ValueError(f"dataset shard {path}: field {key!r} contains NaN/Inf at row "
                             f"{bad[0][0]}, column {bad[0][1]}; {fix}")
    obs = {name: data.pop(key) for name, key in keys.items()}
    data["obs"] = obs if isinstance(obs_spec, ObsSpec) else obs[spec.input_names[0]]
    return data


def load_dataset(data_dir: Path, tasks: list[str], obs_spec: Union[Spec, ObsSpec],
                 act_spec: Spec) -> tuple[Obs, np.ndarray, np.ndarray]:
    """All shards of `tasks`: (obs, act, task_index per step); obs as `read_shard` gives it."""
    obs, act, idx = [], [], []
    for i, task in enumerate(tasks):
        shards = sorted((data_dir / task).glob("shard_*.npz"))
        if not shards:
            raise FileNotFoundError(f"no dataset shards in {data_dir / task}; run "
                                    "`distill-ros collect CONFIG` first")
        for shard in shards:
            d = read_shard(shard, obs_spec, act_spec)
            obs.append(d["obs"])
            act.append(d["act"])
            idx.append(np.full(len(d["act"]), i, np.int32))
    act_all = np.concatenate(act)
    obs_all = (_concat(obs, obs_spec) if isinstance(obs_spec, ObsSpec)
               else np.concatenate(obs))
    if len(act_all) == 0:
        raise ValueError(f"the dataset in {data_dir} holds no steps: the teachers succeeded in "
                         "no episode; check their success in teachers/*/eval.json or set "
                         "collect.keep: all")
    return obs_all, act_all, np.concatenate(idx)


def read_episodes(path: Path, obs_spec: Spec, act_spec: Spec, field: str) -> list:
    """A user's demonstrations: one ``.npz`` of (observation, action) episodes.

    Fields: ``obs`` (N, obs_dim) and ``act`` (N, act_dim) in physical units, ``episode``
    (N,) integer id of each step's episode (steps of an episode contiguous, in time order);
    optional ``obs_names`` / ``act_names`` (string arrays) are checked against the task
    family's layout. Every episode counts as a success. ``field`` is the config key that
    named the file, for the error messages.
    """
    from distill_ros.rollout import Episode

    path = Path(path)
    layout = (f"obs {list(obs_spec.names)}, act {list(act_spec.names)}, episode (N,) "
              f"integer ids")
    if not path.is_file():
        raise FileNotFoundError(f"{field}: dataset file {path} does not exist; give an .npz "
                                f"with fields {layout}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{field}: dataset file {path} cannot be read as .npz ({err}); "
                         "write it with numpy.savez") from None
    missing = [k for k in ("obs", "act", "episode") if k not in data]
    if missing:
        raise ValueError(f"{field}: dataset file {path} lacks field(s) {missing}; expected "
                         f"{layout}")
    for key, spec in (("obs_names", obs_spec), ("act_names", act_spec)):
        if key in data and [str(n) for n in data[key]] != list(spec.names):
            raise ValueError(f"{field}: dataset file {path}: {key} {list(map(str, data[key]))}"
                             f" differ from the task family's {list(spec.names)}; reorder the "
                             "columns to match")
    n = len(data["episode"])
    for key, dim in (("obs", obs_spec.dim), ("act", act_spec.dim)):
        arr = data[key]
        if arr.ndim != 2 or arr.shape != (n, dim):
            raise ValueError(f"{field}: dataset file {path}: field {key!r} has shape "
                             f"{arr.shape}, expected ({n}, {dim}) (one row per entry of "
                             f"'episode')")
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            raise ValueError(f"{field}: dataset file {path}: field {key!r} contains NaN/Inf "
                             f"at row {bad[0][0]}, column {bad[0][1]}; clean or drop that "
                             "episode")
    ids = np.asarray(data["episode"])
    if n == 0 or ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{field}: dataset file {path}: field 'episode' must be a non-empty "
                         f"1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    if len(starts) != len(np.unique(ids)):
        raise ValueError(f"{field}: dataset file {path}: the steps of an episode must be "
                         "contiguous (some episode id appears in two runs); sort by episode")
    ends = np.r_[starts[1:], n]
    return [Episode(data["obs"][a:b].astype(np.float32), data["act"][a:b].astype(np.float32),
                    True, -1) for a, b in zip(starts, ends)]

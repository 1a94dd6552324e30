"""A vector of task environments (gymnasium's vector API) and their observation groups.

Env i runs task `env_tasks[i]`. With more than one env the vector is, by default, a process
pool (`AsyncVectorEnv`: one worker process per env, the simulators step in parallel). Episodes
end at the first success, as in every rollout of this package, and envs are reset
explicitly (`reset_mask`), so the step that ends an episode still reports its success.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np

FLAT_GROUP = "obs"   # the one group of a flat observation (distill_ros.spec.FLAT_GROUP)

MakeEnv = Callable[[str], gym.Env]


class EndOnSuccess(gym.Wrapper):
    """Terminate the episode at the first step whose info says `is_success`."""

    def step(self, action):
        """Step, then end the episode if it just succeeded."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, bool(terminated or info.get("is_success", False)), truncated, info


def _build(make: MakeEnv, task: str) -> gym.Env:
    return EndOnSuccess(make(task))


def vector_kind(vector: str, n_envs: int) -> str:
    """`sync` or `async` for the config's `vector` setting (auto: async when n_envs > 1)."""
    if vector == "auto":
        return "async" if n_envs > 1 else "sync"
    return vector


def make_vector_env(make: MakeEnv, env_tasks: Sequence[str], vector: str = "auto"
                    ) -> gym.vector.VectorEnv:
    """One env per entry of `env_tasks`, in a process pool or in this process."""
    fns = [functools.partial(_build, make, task) for task in env_tasks]
    mode = gym.vector.AutoresetMode.DISABLED
    if vector_kind(vector, len(fns)) == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def family_maker(family: str, groups: Sequence[str] = ()) -> MakeEnv:
    """A picklable `task -> env` for a family; `groups` asks it for those observation groups.

    A family that offers groups takes them as the `groups` keyword (as `tasks.toy` does);
    without groups the family's flat observation is used.
    """
    from distill_ros.tasks.base import make_env

    if groups:
        return functools.partial(make_env, family, groups=tuple(groups))
    return functools.partial(make_env, family)


def to_groups(obs: object) -> dict[str, np.ndarray]:
    """A batch of observations as a dict of arrays by input name (flat: one group `obs`)."""
    if isinstance(obs, dict):
        return {k: np.asarray(v, np.float32) for k, v in obs.items()}
    return {FLAT_GROUP: np.asarray(obs, np.float32)}


def select(groups: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The inputs of the named groups, in `names` order (a command brings `<name>_mask`).

    Empty `names`: every input, in the env's order. The order matters: it is the order of
    the student's groups (gymnasium's `Dict` spaces sort their keys; the config does not).
    """
    if not names:
        return dict(groups)
    missing = [n for n in names if n not in groups]
    if missing:
        raise ValueError(f"observation group(s) {missing} are not in the family's "
                         f"observation {sorted(groups)}; fix dagger.teacher_groups or "
                         "dagger.student_groups")
    return {k: groups[k] for n in names for k in (n, f"{n}_mask") if k in groups}


def flatten(groups: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """(B, D) concatenation of the named groups' inputs, in `names` order (a teacher's input)."""
    return np.concatenate([a.reshape(len(a), -1) for a in select(groups, names).values()],
                          axis=1)


def episode_outcomes(terminated: np.ndarray, truncated: np.ndarray, info: dict
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(done, success) per env from a vector step (success read from `info['is_success']`)."""
    done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
    success = np.zeros_like(done)
    if "is_success" in info:
        success = np.asarray(info["is_success"], bool) & np.asarray(
            info.get("_is_success", np.ones_like(done)), bool)
    return done, success


def group_spec(shapes: dict[str, tuple[int, ...]], flat: object = None,
               named: object = None) -> object:
    """The `ObsSpec` of observation inputs by per-sample shape, as a student reads them.

    The one input `obs` is the family's flat spec `flat` (if given). Otherwise each input
    becomes a group: `<name>` with `<name>_mask` beside it is a command, a (N, C) array is
    points, a vector is a vector. Channels take the names of the same-sized group of `named`
    (the family's `obs_groups`), so the exported student's inputs can be sourced by name
    (e.g. from a robot's labelled features); else they are named `<name>_<i>`. A points
    group keeps the family group's `preprocess`, so the node rebuilds it as training did.
    """
    from distill_ros.spec import Group, ObsSpec, Spec

    if list(shapes) == [FLAT_GROUP] and flat is not None:
        return ObsSpec.of(flat)
    known = {g.name: g for g in named.groups} if named is not None else {}
    groups = []
    for name, shape in shapes.items():
        if name.endswith("_mask") and name[:-5] in shapes:
            continue
        same = known.get(name)
        if same is not None and same.channels.dim == shape[-1]:
            channels, preprocess = same.channels, same.preprocess
        else:
            channels, preprocess = Spec(tuple(f"{name}_{i}" for i in range(shape[-1]))), None
        if f"{name}_mask" in shapes:
            groups.append(Group(name, "command", channels))
        elif len(shape) == 2:   # a family's cloud preprocessing travels with its points
            groups.append(Group(name, "points", channels, shape[0], preprocess=preprocess))
        else:
            groups.append(Group(name, "vector", channels))
    return ObsSpec(tuple(groups))

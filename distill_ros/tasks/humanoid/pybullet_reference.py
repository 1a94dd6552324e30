"""pybullet's own DeepMimic environment, loaded module by module: the reference for ours.

`pybullet_envs/__init__.py` imports the old `gym` (absent here: we use gymnasium), and every
DeepMimic module imports its siblings through the `pybullet_envs.` package path. So we place an
empty package object named `pybullet_envs` in `sys.modules` whose `__path__` is the real
folder: Python then finds and runs the submodules from their files without ever running the
package's `__init__.py`. No gym stub is needed, and nothing of pybullet's code is changed.
Used by the tests and `bench/bench_humanoid.py` only; the environment itself does not need it.
In a process that called it, `import pybullet_envs` gives that bare package (no gym envs).
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import sys
import types

import numpy as np

CONTROL_DT = 1.0 / 30.0
SIM_DT = 1.0 / 240.0


def load_reference_module():
    """Import `pybullet_envs.deep_mimic.env.pybullet_deep_mimic_env` without the package init."""
    if "pybullet_envs" not in sys.modules:
        spec = importlib.util.find_spec("pybullet_envs")  # locates it; does not run __init__
        package = types.ModuleType("pybullet_envs")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["pybullet_envs"] = package
    return importlib.import_module("pybullet_envs.deep_mimic.env.pybullet_deep_mimic_env")


def make_reference_env(clip: str):
    """The PyBulletDeepMimicEnv of pybullet, with the clip's `run_humanoid3d_<clip>_args.txt`."""
    import pybullet_data
    from pybullet_utils.arg_parser import ArgParser

    module = load_reference_module()
    args = ArgParser()
    if not args.load_file(f"{pybullet_data.getDataPath()}/args/run_humanoid3d_{clip}_args.txt"):
        raise FileNotFoundError(f"no pybullet args file for clip {clip}")
    return module.PyBulletDeepMimicEnv(args, enable_draw=False)


def reference_start_time(env, seed: int) -> float:
    """Seed Python's `random` (the reference's RSI source) and return the start time it draws."""
    rn = random.Random(seed).randint(0, 1000)
    random.seed(seed)
    return rn / 1000 * env._humanoid.getCycleTime()


def run_reference(env, teacher, seed: int, steps: int) -> tuple[list[float], bool]:
    """One episode: a new action every 8 updates of 1/240 s, the reward after them.

    DeepMimic's world loop asks `need_new_action`, which compares times summed in floating
    point and so often waits 9 updates (26.7 Hz) instead of 8; we step exactly 30 Hz here.
    Returns each control step's imitation reward and whether the character fell (checked
    after every update, as the world loop does; the reward is then read at the fall).
    """
    reference_start_time(env, seed)
    env.reset()
    rewards = []
    for _ in range(steps):
        env.set_action(0, teacher.act(np.asarray(env.record_state(0))))
        for _ in range(round(CONTROL_DT / SIM_DT)):
            env.update(SIM_DT)
            if env.is_episode_end():
                rewards.append(env.calc_reward(0))
                return rewards, True
        rewards.append(env.calc_reward(0))
    return rewards, False

"""Where the onestep algorithm's data comes from: demonstrators, the user's episodes, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill_ros.config import PipelineConfig
from distill_ros.distill.offline.stages import teacher_file
from distill_ros.distill.onestep.chunk_data import load_windows
from distill_ros.rollout import episode_seed
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family, make_env

#: base of the seeds of OneDP's extra start states (`onestep.distill_starts`), plus the run
#: seed: apart from the data's (the run seed), the teachers' (7 000) and the eval's (100 000)
START_SEED = 300_000


def builtin_experts(family: str) -> dict:
    """The family's built-in demonstrators by name (grasp's live in `scripted_styles`)."""
    fam = get_family(family)
    if fam.scripted_experts is not None:
        return fam.scripted_experts
    if family == "grasp":
        from distill_ros.teachers.scripted_styles import SCRIPTED_EXPERTS

        return SCRIPTED_EXPERTS
    return {}


def demonstrators(run: RunDir, cfg: PipelineConfig, task: str) -> list[tuple[str, Path]]:
    """(name, teacher file) of every demonstrator of `task`."""
    if not cfg.onestep.demonstrators:
        return [("teacher", teacher_file(run, cfg, task))]
    experts = builtin_experts(cfg.family)
    out = []
    for entry in cfg.onestep.demonstrators:
        if entry in experts:
            out.append((entry, run.root / "teachers" / "demonstrators" / f"{entry}.pt"))
        else:
            path = Path(entry.replace("{task}", task)).expanduser()
            out.append((path.stem, path))
    return out


def dataset_file(cfg: PipelineConfig, task: str) -> Path:
    """The user's episodes file of `task` (`onestep.dataset` with `{task}` filled in)."""
    return Path(cfg.onestep.dataset.replace("{task}", task)).expanduser()


def windows(run: RunDir, cfg: PipelineConfig):
    """(obs history, action chunks, frames) of the run's dataset."""
    fam = get_family(cfg.family)
    return load_windows(run.root / "data", cfg.tasks, fam.obs_spec, fam.act_spec,
                        cfg.onestep.obs_history, cfg.onestep.horizon)


def start_windows(cfg: PipelineConfig) -> np.ndarray:
    """`onestep.distill_starts` reset states per task as first-plan histories, (N, h*obs_dim).

    OneDP needs observations only, no actions: these windows (the first frame repeated into
    the history, as at tick 0 of an episode) let the generator train on many more starts
    than the demonstrations hold. Task i's state j resets with `episode_seed(START_SEED +
    seed, i, j)`.
    """
    count, history = cfg.onestep.distill_starts, cfg.onestep.obs_history
    dim = get_family(cfg.family).obs_spec.dim
    rows = np.zeros((count * len(cfg.tasks), history * dim), np.float32)
    for i, task in enumerate(cfg.tasks):
        env = make_env(cfg.family, task)
        try:
            for j in range(count):
                frame = np.asarray(env.reset(seed=episode_seed(START_SEED + cfg.seed, i, j))[0])
                rows[i * count + j] = np.tile(frame.astype(np.float32), history)
        finally:
            env.close()
    return rows

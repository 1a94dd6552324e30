"""Where the onestep algorithm's data comes from: demonstrators, the user's episodes, windows."""

from __future__ import annotations

from pathlib import Path

from distill_ros.config import PipelineConfig
from distill_ros.distill.offline.stages import teacher_file
from distill_ros.distill.onestep.chunk_data import load_windows
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family


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

"""Make one task's teacher file: the family's scripted expert, or an SB3 expert trained here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from distill_ros.teachers.config import TeacherConfig

if TYPE_CHECKING:
    import torch

#: a scripted teacher's file in its task's folder (TorchScript; SB3 teachers: teacher.zip)
SCRIPTED_FILE = "teacher.pt"


def train_teacher(family: str, task: str, cfg: TeacherConfig, out_dir: Path, seed: int,
                  progress=None) -> Path:
    """`teachers.algo: scripted` saves the family's expert; otherwise SB3 trains (resumably)."""
    if cfg.algo == "scripted":
        return save_scripted(family, cfg.expert, Path(out_dir) / SCRIPTED_FILE)
    from distill_ros.teachers.sb3 import train_teacher as train_sb3

    return train_sb3(family, task, cfg, Path(out_dir), seed, progress)


def save_scripted(family: str, name: str, path: Path) -> Path:
    """The family's scripted expert `name` as a TorchScript teacher file at `path`."""
    import io

    import torch

    from distill_ros.atomic import atomic_write

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(family_expert(family, name)), buf)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return path


def family_expert(family: str, name: str = "") -> torch.nn.Module:
    """The family's scripted expert `name` (empty: its only one) as a module, obs -> action."""
    from distill_ros.tasks.base import get_family

    experts = get_family(family).scripted_experts or {}
    if family == "grasp" and not experts:
        from distill_ros.teachers.scripted_styles import SCRIPTED_EXPERTS as experts
    if not experts:
        raise ValueError(f"family {family!r} has no scripted expert: teachers.algo scripted "
                         "and teachers.demo_episodes need one; train SAC/PPO from scratch or "
                         "give teachers.sources")
    if not name and len(experts) > 1:
        raise ValueError(f"family {family!r} has several scripted experts {sorted(experts)}: "
                         "choose one with teachers.expert")
    key = name or next(iter(experts))
    if key not in experts:
        raise ValueError(f"teachers.expert {name!r} is not a scripted expert of family "
                         f"{family!r}; valid choices: {sorted(experts)}")
    return experts[key]().eval()

"""Make one task's teacher file: the family's scripted expert, or an SB3 expert trained here."""

from __future__ import annotations

from pathlib import Path
from distill_ros.teachers.config import TeacherConfig
from distill_ros.teachers.experts import family_expert

#: a scripted teacher's file in its task's folder (TorchScript; SB3 teachers: teacher.zip)
SCRIPTED_FILE = "teacher.pt"


def train_teacher(family: str, task: str, cfg: TeacherConfig, out_dir: Path, seed: int,
                  progress=None, until: int | None = None) -> Path | None:
    """`teachers.algo: scripted` saves the family's expert; otherwise SB3 trains (resumably).

    `until`: SB3 stops at its first checkpoint past that many steps (None: not the end yet).
    """
    if cfg.algo == "scripted":
        return save_scripted(family, cfg.expert, Path(out_dir) / SCRIPTED_FILE)
    from distill_ros.teachers.sb3 import train_teacher as train_sb3

    return train_sb3(family, task, cfg, Path(out_dir), seed, progress, until)


def save_scripted(family: str, name: str, path: Path) -> Path:
    """The family's scripted expert `name` as a TorchScript teacher file at `path`."""
    import io

    import torch

    from distill_ros.atomic import atomic_write

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(family_expert(family, name)), buf)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return path

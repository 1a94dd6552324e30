"""Teachers: where the experts come from.

Every teacher, whatever its source, is a `Teacher`: physical observation in, physical
action out, deterministic. A new source is one loader added to `LOADERS` by file suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from distill_ros.spec import Spec
from distill_ros.teachers.base import Teacher, check_obs_dim

__all__ = ["LOADERS", "Teacher", "check_obs_dim", "load_teacher", "teacher_file",
           "trained_teacher_file"]


def _load_sb3(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.sb3 import SB3Teacher

    return SB3Teacher.load(path, obs_spec, act_spec)


def _load_onnx(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.files import OnnxTeacher

    return OnnxTeacher(path, obs_spec, act_spec)


def _load_torchscript(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.files import TorchScriptTeacher

    return TorchScriptTeacher(path, obs_spec, act_spec)


def _load_deepmimic(path: Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    from distill_ros.teachers.deepmimic import DeepMimicTeacher

    return DeepMimicTeacher.from_index_file(path, obs_spec, act_spec)


LOADERS: dict[str, Callable[[Path, Spec, Spec], Teacher]] = {
    ".zip": _load_sb3,
    ".onnx": _load_onnx,
    ".pt": _load_torchscript,
    ".ts": _load_torchscript,
    ".index": _load_deepmimic,  # a TF1 checkpoint (DeepMimic PPO agent), named by its .index
}


def load_teacher(path: str | Path, obs_spec: Spec, act_spec: Spec) -> Teacher:
    """Load a teacher file, chosen by suffix, and check it fits the task's layouts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teacher file {path} does not exist; fix teachers.sources in "
                                "the config or run `distill-ros teachers` to train one")
    if path.suffix not in LOADERS:
        raise ValueError(f"teacher file {path}: unsupported type {path.suffix!r}; use one of "
                         f"{sorted(LOADERS)} (SB3 .zip, ONNX, TorchScript, DeepMimic "
                         "checkpoint .index)")
    return LOADERS[path.suffix](path, obs_spec, act_spec)


def teacher_file(run_root: Path, sources: dict[str, str], task: str,
                 family: str | None = None) -> Path:
    """The teacher file of `task`: the user's, the family's shipped one, or the run's own.

    The user's is the one `teachers.sources` names; the family's is what `family` ships for
    the task (e.g. humanoid's DeepMimic checkpoints); else the one trained in the run.
    """
    if task in sources:
        return Path(sources[task]).expanduser()
    if family is not None:
        from distill_ros.tasks.base import get_family

        shipped = get_family(family).shipped_teacher
        path = shipped(task) if shipped is not None else None
        if path is not None:
            return Path(path)
    return trained_teacher_file(run_root, task)


def trained_teacher_file(run_root: Path, task: str) -> Path:
    """Where the run keeps the teacher it makes itself for `task`.

    `teacher.pt` where a scripted teacher was saved (`teachers.algo: scripted`), else the
    SB3 `teacher.zip`.
    """
    folder = Path(run_root) / "teachers" / task
    return folder / "teacher.pt" if (folder / "teacher.pt").is_file() else folder / "teacher.zip"

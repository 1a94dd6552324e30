"""Pipeline configuration: YAML onto the components' own dataclasses, checked at load.

Each section's dataclass lives with its component and checks its own values (ranges,
choices); the chosen algorithm's section comes from the algorithm registry. Unknown keys,
missing required keys, wrong types and out-of-range values stop before any work starts,
with a message naming the file, the dotted key, the bad value and the valid choices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distill_ros.checks import in_range
from distill_ros.collect import CollectConfig
from distill_ros.distill import ALGORITHMS, Algorithm, get_algorithm
from distill_ros.distill.offline.config import DistillConfig
from distill_ros.evaluate import EvalConfig
from distill_ros.executor import EXECUTORS, RayConfig
from distill_ros.export.config import ExportConfig
from distill_ros.students.config import StudentConfig
from distill_ros.tasks.base import add_user_tasks, check_tasks
from distill_ros.teachers.config import DEFAULTED_KEYS, TeacherConfig

__all__ = ["PipelineConfig", "StudentConfig", "TeacherConfig", "load_config"]


MAX_SEED = 2**32 - 1          # numpy, gymnasium and SB3 seeds are 32-bit
TEACHER_SEED_STRIDE = 1000    # task i's teacher trains with seed * 1000 + i


@dataclass
class ObjectConfig:
    """A user's object (grasp family): a URDF or mesh (.obj, .stl) file and its scale.

    A relative path is read from the current folder, then from pybullet_data; the family
    checks the file and the scale when the config loads (`tasks.grasp_objects`).
    """

    path: str
    scale: float = 1.0


@dataclass
class PipelineConfig:
    """A whole run: which tasks, which held out, and every stage's settings.

    Each section's dataclass belongs to its component, which validates it. The settings of
    the chosen algorithm (e.g. `onestep`) live in `sections` and read as `cfg.onestep`.
    """

    name: str
    family: str                 # a built-in family, or my_pkg.my_module:FAMILY
    tasks: list[str]
    held_out: list[str] = field(default_factory=list)
    seed: int = 0
    threads: int = 1    # torch threads per process ($DISTILL_ROS_THREADS overrides); not hashed
    executor: str = "serial"  # serial | processes | ray (--executor); not hashed
    ray: RayConfig = field(default_factory=RayConfig)  # executor ray; not hashed
    teachers: TeacherConfig = field(default_factory=TeacherConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sections: dict[str, Any] = field(default_factory=dict, metadata={"yaml": False})
    objects: dict[str, ObjectConfig] = field(default_factory=dict)  # the user's own tasks

    def __post_init__(self) -> None:
        fam = add_user_tasks(self.family, self.objects, "objects")
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {list(EXECUTORS)}, got "
                             f"{self.executor!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1 (torch threads per process), "
                             f"got {self.threads}")
        if not self.tasks:
            raise ValueError("tasks must list at least one task to distil from")
        check_tasks(fam, self.tasks, "tasks")
        check_tasks(fam, self.held_out, "held_out")
        both = sorted(set(self.tasks) & set(self.held_out))
        if both:
            raise ValueError(f"held_out tasks must not be in tasks, got {both} in both")
        check_tasks(fam, list(self.teachers.sources), "teachers.sources")
        if self.student.points_frame and fam.act_frame_vectors is None:
            raise ValueError(f"student.points_frame needs a family that says which of its "
                             f"action's values are world-frame vectors; {self.family!r} does "
                             "not (TaskFamily.act_frame_vectors): leave points_frame empty")
        in_range("seed", self.seed, 0, MAX_SEED)
        top = self.seed * TEACHER_SEED_STRIDE + len(self.tasks) - 1
        if top > MAX_SEED and set(self.tasks) - set(self.teachers.sources):
            highest = (MAX_SEED - len(self.tasks) + 1) // TEACHER_SEED_STRIDE
            raise ValueError(f"seed must be <= {highest} "
                             f"when teachers are trained here (task i's teacher uses seed * "
                             f"{TEACHER_SEED_STRIDE} + i, which must stay below 2**32), "
                             f"got {self.seed}")

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:  # an algorithm's own settings, e.g. cfg.onestep
            return sections[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or section {name!r}")

    def to_dict(self) -> dict:
        """Plain dict, as written to run.json (only the chosen algorithm's section)."""
        d = {f.name: dataclasses.asdict(self)[f.name] for f in dataclasses.fields(self)
             if f.metadata.get("yaml", True)}
        for how in ("threads", "executor", "ray"):  # how fast, not what: a resumed run may
            d.pop(how)  # use another thread count or executor (the artefacts are the same)
        d["distill"].pop("nproc")  # likewise the student's rank count
        if not self.objects:
            d.pop("objects")  # so adding the key does not orphan older runs
        for key in DEFAULTED_KEYS:
            if d["teachers"][key] == getattr(TeacherConfig, key):
                d["teachers"].pop(key)
        for key in ("points_origin", "points_frame"):  # added later: unset, older runs
            if not getattr(self.student, key):           # keep their hash
                d["student"].pop(key)
        for name, section in self.sections.items():
            if name == get_algorithm(self.distill.algorithm).name:
                d[name] = (section.ledger_dict() if hasattr(section, "ledger_dict")
                           else dataclasses.asdict(section))
        return d

    def digest(self) -> str:
        """Short stable hash of the settings (goes into run.json and the ONNX metadata)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _build(cls: type, data: object, where: str, source: str):
    """Map a YAML mapping onto dataclass `cls`, refusing unknown/missing keys and bad types."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {where or 'top level'} must be a mapping, "
                         f"got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {[_dot(where, k) for k in unknown]}; "
                         f"valid keys here: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = _dot(where, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{source}: missing required key {key!r}")
            continue
        kwargs[name] = _convert(hints[name], data[name], key, source)
    try:
        return cls(**kwargs)
    except (ValueError, FileNotFoundError) as err:
        raise type(err)(f"{source}: {err}") from None


def _convert(hint: object, value: object, key: str, source: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, source)
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"{source}: {key} must be a list, got {value!r}")
        return [_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{source}: {key} must be a mapping, got {value!r}")
        _, item = typing.get_args(hint)
        return {str(k): _convert(item, v, f"{key}.{k}", source) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string; the user meant a number
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


def _dot(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def load_config(path: str | Path) -> PipelineConfig:
    """Read a pipeline YAML file into a validated `PipelineConfig`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; the built-in ones are in "
                                "config/ (e.g. config/grasp_quick.yaml)")
    try:
        with open(path, encoding="utf-8") as handle:  # errors then name the file
            data = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        return _build(PipelineConfig, data, "", str(path))  # refuses it, naming the file
    algo = _algorithm(data, str(path))
    names = {*ALGORITHMS, algo.name}  # sections of other algorithms are checked, not kept
    sections = {k: data[k] for k in names if k in data}
    cfg = _build(PipelineConfig, {k: v for k, v in data.items() if k not in names}, "",
                 str(path))
    for name, section in sections.items():
        other = algo if name == algo.name else get_algorithm(name)
        if other.config_cls is None:
            raise ValueError(f"{path}: algorithm {name!r} has no settings; remove the "
                             f"{name!r} section")
        built = _build(other.config_cls, section, name, str(path))
        if other is algo:
            cfg.sections[name] = built
    if algo.config_cls is not None and algo.name not in cfg.sections:
        cfg.sections[algo.name] = _build(algo.config_cls, {}, algo.name, str(path))
    reads = getattr(cfg.sections.get(algo.name), "student_groups", None)
    for key in ("points_origin", "points_frame"):  # now, not after the teachers are trained
        group = getattr(cfg.student, key)
        if group and reads and group not in reads:
            raise ValueError(f"{path}: student.{key} {group!r} is not a group the student "
                             f"reads ({algo.name}.student_groups: {reads}); name one of "
                             f"them (e.g. proprio, the gripper's pose) or leave it empty")
    return cfg


def _algorithm(data: dict, source: str) -> Algorithm:
    """The algorithm `distill.algorithm` names (default offline), its errors naming the file."""
    distill = data.get("distill") or {}
    name = distill.get("algorithm", DistillConfig.algorithm) if isinstance(distill, dict) \
        else DistillConfig.algorithm
    try:
        return get_algorithm(str(name))
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None

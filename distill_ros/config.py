"""Pipeline configuration: one dataclass per component, loaded strictly from YAML.

Unknown keys, missing required keys and wrong types stop with a message naming the file,
the dotted key, the bad value and the valid choices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


def _choice(owner: str, name: str, value: object, choices: typing.Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {choices}, got {value!r}")


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{owner}.{name} must be > 0, got {value!r}")


@dataclass
class TeacherConfig:
    """Where experts come from: trained here with SB3, or the user's files per task."""

    algo: str = "sac"
    timesteps: int = 60_000
    n_envs: int = 4
    n_steps: int = 256          # PPO only: rollout length per env
    batch_size: int = 256
    learning_rate: float = 1e-3
    gamma: float = 0.98
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    checkpoint_every: int = 10_000
    eval_episodes: int = 20
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _choice("teachers", "algo", self.algo, ("ppo", "sac"))
        _positive("teachers", timesteps=self.timesteps, n_envs=self.n_envs,
                  n_steps=self.n_steps, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                  eval_episodes=self.eval_episodes)


@dataclass
class CollectConfig:
    """Teacher rollouts that become the distillation dataset."""

    episodes_per_task: int = 200
    keep: str = "success"
    shard_episodes: int = 50

    def __post_init__(self) -> None:
        _choice("collect", "keep", self.keep, ("success", "all"))
        _positive("collect", episodes_per_task=self.episodes_per_task,
                  shard_episodes=self.shard_episodes)


@dataclass
class StudentConfig:
    """The one student network."""

    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2

    def __post_init__(self) -> None:
        from distill_ros.students import ARCHITECTURES

        _choice("student", "arch", self.arch, ARCHITECTURES)
        _positive("student", d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers)
        if self.d_model % self.n_heads:
            raise ValueError(f"student.d_model must be a multiple of student.n_heads "
                             f"({self.n_heads}), got {self.d_model}")


@dataclass
class DistillConfig:
    """Training the student from teacher data."""

    algorithm: str = "offline"
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        from distill_ros.distill import ALGORITHMS

        _choice("distill", "algorithm", self.algorithm, ALGORITHMS)
        _positive("distill", epochs=self.epochs, batch_size=self.batch_size,
                  learning_rate=self.learning_rate)
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"distill.val_fraction must be in (0, 0.5), got {self.val_fraction}")


@dataclass
class ExportConfig:
    """ONNX export and its parity check."""

    parity_tol: float = 1e-4
    opset: int = 17

    def __post_init__(self) -> None:
        _positive("export", parity_tol=self.parity_tol)


@dataclass
class EvalConfig:
    """Per-task success of teachers and student on the same seeds."""

    episodes: int = 50
    seed: int = 100_000

    def __post_init__(self) -> None:
        _positive("eval", episodes=self.episodes)


@dataclass
class OneStepPipelineConfig:
    """Diffusion-policy teacher, OneDP generators and the BC baseline (distill.algorithm onestep).

    `demonstrators` lists who produces the data for every task: built-in scripted experts
    by name (see `distill_ros.teachers.scripted_styles`) or teacher files, where `{task}`
    in a path becomes the task name; empty means the pipeline's own teachers. Episodes of a
    task alternate between the demonstrators, so several of them make the data multimodal.
    `dataset` instead names the user's own demonstrations, one `.npz` of episodes per task
    (`{task}` in the path becomes the task name; fields in `distill.dataset.read_episodes`).
    """

    demonstrators: list[str] = field(default_factory=list)
    dataset: str = ""
    horizon: int = 8               # H, steps per predicted action chunk
    n_exec: int = 4                # steps of each chunk executed before re-planning
    obs_history: int = 2           # observation frames the policy sees, oldest first
    hidden_dim: int = 256
    n_blocks: int = 3
    diffusion_steps: int = 100     # T of the DDPM teacher
    schedule: str = "cosine"       # noise schedule: cosine or linear
    prediction: str = "sample"     # teacher's target: sample (x_0) or epsilon (see onestep.py)
    ddim_steps: int = 10           # the DDIM setting evaluated beside the 100-step DDPM
    teacher_updates: int = 4000
    teacher_batch_size: int = 256
    teacher_lr: float = 1e-3
    variants: list[str] = field(default_factory=lambda: ["stochastic", "deterministic"])
    deploy: str = "stochastic"     # variant exported as export/policy.onnx
    distill_updates: int = 200     # OneDP generator updates per variant
    distill_batch_size: int = 128
    lr_generator: float = 1e-4
    lr_score: float = 1e-3         # OneDP-S: the score network must track the generator
    weighting: str = "sigma2"      # w(k) of the KL gradient: sigma2 (OneDP) or dmd
    checkpoint_every: int = 500    # updates between checkpoints (teacher and generators)
    latency_repeats: int = 30      # timed batch-1 calls per policy in the report

    def __post_init__(self) -> None:
        from distill_ros.distill.onestep.distiller import VARIANTS, WEIGHTINGS
        from distill_ros.teachers.diffusion import PREDICTIONS
        from distill_ros.teachers.diffusion_schedule import SCHEDULES

        _positive("onestep", horizon=self.horizon, n_exec=self.n_exec,
                  obs_history=self.obs_history, hidden_dim=self.hidden_dim,
                  n_blocks=self.n_blocks, ddim_steps=self.ddim_steps,
                  teacher_updates=self.teacher_updates,
                  teacher_batch_size=self.teacher_batch_size, teacher_lr=self.teacher_lr,
                  distill_updates=self.distill_updates,
                  distill_batch_size=self.distill_batch_size, lr_generator=self.lr_generator,
                  lr_score=self.lr_score, checkpoint_every=self.checkpoint_every,
                  latency_repeats=self.latency_repeats)
        if self.n_exec > self.horizon:
            raise ValueError(f"onestep.n_exec must be <= onestep.horizon ({self.horizon}), "
                             f"got {self.n_exec}")
        if self.diffusion_steps < 2:
            raise ValueError(f"onestep.diffusion_steps must be >= 2, got {self.diffusion_steps}")
        if self.ddim_steps > self.diffusion_steps:
            raise ValueError(f"onestep.ddim_steps must be <= onestep.diffusion_steps "
                             f"({self.diffusion_steps}), got {self.ddim_steps}")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ValueError(f"onestep.variants must list distinct variants from "
                             f"{list(VARIANTS)}, got {self.variants}")
        for variant in self.variants:
            _choice("onestep", "variants[]", variant, VARIANTS)
        _choice("onestep", "deploy", self.deploy, self.variants)
        _choice("onestep", "schedule", self.schedule, SCHEDULES)
        _choice("onestep", "prediction", self.prediction, PREDICTIONS)
        _choice("onestep", "weighting", self.weighting, WEIGHTINGS)
        if self.dataset and self.demonstrators:
            raise ValueError("onestep.dataset and onestep.demonstrators both set: the data "
                             "comes from one of them; remove the other")


@dataclass
class PipelineConfig:
    """A whole run: which tasks, which held out, and every stage's settings."""

    name: str
    family: str
    tasks: list[str]
    held_out: list[str] = field(default_factory=list)
    seed: int = 0
    teachers: TeacherConfig = field(default_factory=TeacherConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    onestep: OneStepPipelineConfig = field(default_factory=OneStepPipelineConfig)

    def __post_init__(self) -> None:
        from distill_ros.tasks.base import check_tasks, get_family

        fam = get_family(self.family)
        if not self.tasks:
            raise ValueError("tasks must list at least one task to distil from")
        check_tasks(fam, self.tasks, "tasks")
        check_tasks(fam, self.held_out, "held_out")
        both = sorted(set(self.tasks) & set(self.held_out))
        if both:
            raise ValueError(f"held_out tasks must not be in tasks, got {both} in both")
        check_tasks(fam, list(self.teachers.sources), "teachers.sources")

    def to_dict(self) -> dict:
        """Plain dict, as written to run.json (sections of unused algorithms left out)."""
        d = dataclasses.asdict(self)
        if self.distill.algorithm != "onestep":
            d.pop("onestep", None)  # so adding a section does not orphan older runs
        elif not self.onestep.dataset:
            d["onestep"].pop("dataset")  # likewise for a key added later
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
    fields = {f.name: f for f in dataclasses.fields(cls)}
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
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


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
        return {str(k): _convert(str, v, f"{key}.{k}", source) for k, v in value.items()}
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
    return _build(PipelineConfig, data, "", str(path))

"""The ONE schema of an exported policy's metadata: every writer and reader goes through here.

An ONNX file carries string key/value pairs (``metadata_props``). `PolicyMetadata` is their
typed, versioned form: the observation groups, the action spec, the control rate, the
chunking of action-chunk policies and the provenance. Files written before the schema had a
version (distill_ros 0.1, flat observations) read as version 1; a file from a newer
distill_ros is refused with the version it needs. No torch and no onnx import at module level:
the runtime reads metadata through this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from distill_ros import __version__
from distill_ros.spec import ObsSpec, Spec

#: the schema this distill_ros writes; 1 = the version-less files of distill_ros 0.1
SCHEMA_VERSION = 2
VERSION_KEY = "metadata_version"
REQUIRED = ("obs_spec", "act_spec", "control_rate_hz", "task_family")
CHUNK_KEYS = ("chunk_length", "n_exec", "obs_history")


@dataclass(frozen=True)
class Chunking:
    """An action-chunk policy: H actions per call, `n_exec` executed, `obs_history` frames."""

    chunk_length: int
    n_exec: int
    obs_history: int

    def __post_init__(self) -> None:
        if not 1 <= self.n_exec <= self.chunk_length or self.obs_history < 1:
            raise ValueError(f"chunking needs 1 <= n_exec <= chunk_length and obs_history >= 1,"
                             f" got {self}")


@dataclass(frozen=True)
class Provenance:
    """Where a policy came from (informational: nothing at run time depends on it)."""

    package_version: str = __version__
    config_hash: str = ""
    tasks: tuple[str, ...] = ()
    student_arch: str = ""


@dataclass(frozen=True)
class PolicyMetadata:
    """Everything needed to run an exported policy, and the schema version it was written in."""

    obs: ObsSpec
    act: Spec
    control_rate_hz: float
    task_family: str
    provenance: Provenance = field(default_factory=Provenance)
    chunking: Optional[Chunking] = None
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.control_rate_hz > 0:
            raise ValueError(f"control_rate_hz must be > 0, got {self.control_rate_hz}")

    @property
    def policy_kind(self) -> str:
        """``action_chunk`` for chunk generators (inputs + ``noise``), else ``action``."""
        return "action" if self.chunking is None else "action_chunk"

    def input_names(self) -> list[str]:
        """The ONNX inputs, in order: one per group (a command adds ``<name>_mask``)."""
        return list(self.obs.input_names) + (["noise"] if self.chunking else [])

    def describe_inputs(self) -> str:
        """Human-readable shapes of the inputs (written beside the schema for people)."""
        if self.chunking:
            c = self.chunking
            return (f"obs: (B, {c.obs_history}*{self.obs.groups[0].size}) raw frames oldest "
                    f"first; noise: (B, {c.chunk_length}, {self.act.dim}) standard normal")
        parts = [f"{n}: (B, {', '.join(map(str, s))})" for n, s in self.obs.input_shapes().items()]
        masks = [f"{g.name}_mask" for g in self.obs.groups if g.kind == "command"]
        return "; ".join(parts) + (f" ({', '.join(masks)}: 1 commanded, 0 ignored)"
                                   if masks else "")

    # -- strings in the file ---------------------------------------------------------------------
    def to_props(self) -> dict[str, str]:
        """The key/value strings written into the ONNX file."""
        p = self.provenance
        props = {VERSION_KEY: str(self.version), "obs_spec": self.obs.to_json(),
                 "act_spec": self.act.to_json(), "control_rate_hz": f"{self.control_rate_hz:g}",
                 "task_family": self.task_family, "policy_kind": self.policy_kind,
                 "inputs": self.describe_inputs(), "package_version": p.package_version,
                 "config_hash": p.config_hash, "tasks": json.dumps(list(p.tasks)),
                 "student_arch": p.student_arch}
        if self.chunking:
            props.update({k: str(getattr(self.chunking, k)) for k in CHUNK_KEYS})
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], where: str) -> "PolicyMetadata":
        """Parse the strings of a file; `where` names it in every error."""
        version = _version(props, where)
        missing = [k for k in REQUIRED if k not in props]
        if missing:
            raise ValueError(f"ONNX file {where} lacks metadata {missing}; it was not made by "
                             "`distill-ros export`: export it with distill_ros")
        try:
            chunking = None
            if props.get("policy_kind") == "action_chunk":
                chunking = Chunking(*(int(props[k]) for k in CHUNK_KEYS))
            prov = Provenance(props.get("package_version", ""), props.get("config_hash", ""),
                              tuple(json.loads(props.get("tasks", "[]"))),
                              props.get("student_arch", ""))
            return cls(ObsSpec.from_json(props["obs_spec"]), Spec.from_json(props["act_spec"]),
                       float(props["control_rate_hz"]), props["task_family"], prov, chunking,
                       version)
        except (KeyError, TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f"ONNX file {where} has malformed metadata ({type(err).__name__}: "
                             f"{err}); export it again with distill_ros") from None

    # -- files -----------------------------------------------------------------------------------
    def write_into(self, model) -> None:
        """Replace the metadata of an in-memory ``onnx.ModelProto`` with this one."""
        del model.metadata_props[:]
        for key, value in sorted(self.to_props().items()):
            model.metadata_props.add(key=key, value=value)

    @classmethod
    def read(cls, path: str | Path) -> "PolicyMetadata":
        """The metadata of an ONNX file, read without building an inference session."""
        return cls.from_props(read_props(path), str(path))

    @classmethod
    def from_session(cls, session, where: str) -> "PolicyMetadata":
        """The metadata of an open ONNX Runtime session."""
        return cls.from_props(session.get_modelmeta().custom_metadata_map, where)


def _version(props: Mapping[str, str], where: str) -> int:
    text = props.get(VERSION_KEY, "1")   # files before the schema had a version: 1
    try:
        version = int(text)
    except ValueError:
        raise ValueError(f"ONNX file {where}: metadata {VERSION_KEY} must be an integer, got "
                         f"{text!r}; export it again with distill_ros") from None
    if version > SCHEMA_VERSION:
        raise ValueError(f"ONNX file {where} has metadata schema version {version}, newer than "
                         f"the {SCHEMA_VERSION} this distill_ros {__version__} reads; upgrade "
                         "distill_ros (pip install -U distill_ros) to run it")
    return version


def read_props(path: str | Path) -> dict[str, str]:
    """The raw metadata strings of an ONNX file; missing or unreadable files name themselves."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist; export one with "
                                "`distill-ros export CONFIG`")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf DecodeError and friends
        raise ValueError(f"ONNX file {path} cannot be loaded ({str(err)[:200]}); it is "
                         "truncated or not an ONNX model: export it again") from None
    return {p.key: p.value for p in model.metadata_props}

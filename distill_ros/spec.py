"""Named observation and action layouts that travel with datasets, checkpoints and ONNX files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class Spec:
    """Layout of one vector: a name per element and, for actions, the physical limits.

    Names make layouts checkable: a dataset, a checkpoint and an ONNX file built for
    another layout are refused by name, not discovered later by a wrong grasp.
    """

    names: tuple[str, ...]
    low: tuple[float, ...] = field(default=())
    high: tuple[float, ...] = field(default=())
    units: str = ""

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(set(self.names)) != n:
            raise ValueError(f"spec names must be unique, got {list(self.names)}")
        for label, seq in (("low", self.low), ("high", self.high)):
            if seq and len(seq) != n:
                raise ValueError(f"spec {label} has {len(seq)} values for {n} names")
        if self.low and self.high and any(lo > hi for lo, hi in zip(self.low, self.high)):
            raise ValueError(f"spec low must be <= high, got low={self.low} high={self.high}")

    @property
    def dim(self) -> int:
        """Number of elements."""
        return len(self.names)

    def to_json(self) -> str:
        """Serialise for metadata (ONNX, checkpoints, dataset shards)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        """Inverse of `to_json`."""
        d = json.loads(text)
        return cls(tuple(d["names"]), tuple(d["low"]), tuple(d["high"]), d.get("units", ""))

    def check_same(self, other: "Spec", what: str, where: str) -> None:
        """Raise a ValueError naming `where` if `other` is a different layout."""
        if tuple(self.names) != tuple(other.names):
            raise ValueError(
                f"{where}: {what} layout differs from the task's: expected {self.dim} "
                f"elements {list(self.names)}, got {other.dim} {list(other.names)}. "
                "Rebuild it for this task or pick the task it was made for."
            )


#: kinds of observation group; see `Group`
KINDS = ("vector", "points", "history", "command")
#: the name of the one group of a flat observation (and of its ONNX input, as before groups)
FLAT_GROUP = "obs"
_RESERVED = ("act",)   # input names whose "<name>_mean" buffer would clash with the student's
#: keys of a points group's ``preprocess`` (`runtime.pointcloud.CloudConfig` less n_points)
PREPROCESS_KEYS = ("voxel_size", "crop_low", "crop_high")


@dataclass(frozen=True)
class Group:
    """One named part of an observation.

    Kinds and shapes (without the batch axis):

    - ``vector``: ``(D,)``, one element per name of ``channels``.
    - ``history``: ``(K, D)``, ``length`` = K frames of that vector, oldest first.
    - ``points``: ``(N, C)``, ``length`` = N points, one channel per name (e.g. x, y, z, label).
    - ``command``: ``(D,)`` values plus a 0/1 mask of the same shape, given as a second
      input named ``<name>_mask`` (1: the element is commanded, 0: ignore its value).

    ``channels`` holds the element or channel names, their optional limits and the units.
    ``preprocess`` (points only) says how a raw labelled cloud becomes the group: the crop
    box (m) and voxel edge (m) of `runtime.pointcloud.preprocess`, which training and the
    node both run from it; None: the cloud's own points, fixed-N selected.
    """

    name: str
    kind: str
    channels: Spec
    length: int = 0
    dtype: str = "float32"
    preprocess: Optional[Mapping[str, Any]] = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name in _RESERVED:
            raise ValueError(f"observation group name must be a Python identifier other than "
                             f"{list(_RESERVED)}, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"observation group {self.name!r}: kind must be one of "
                             f"{list(KINDS)}, got {self.kind!r}")
        if self.channels.dim == 0:
            raise ValueError(f"observation group {self.name!r} has no channels")
        if self.dtype != "float32":
            raise ValueError(f"observation group {self.name!r}: dtype must be 'float32', got "
                             f"{self.dtype!r}")
        sized = self.kind in ("points", "history")
        if sized and self.length < 1:
            raise ValueError(f"observation group {self.name!r} ({self.kind}) needs length >= 1 "
                             f"(points per cloud or frames of history), got {self.length}")
        if not sized and self.length:
            raise ValueError(f"observation group {self.name!r} ({self.kind}) takes no length, "
                             f"got {self.length}")
        if self.preprocess is not None:
            object.__setattr__(self, "preprocess", self._checked_preprocess())

    def _checked_preprocess(self) -> dict:
        """``preprocess`` as plain floats and 3-tuples (equal after a JSON round trip)."""
        unknown = sorted(set(self.preprocess) - set(PREPROCESS_KEYS))
        if self.kind != "points" or unknown:
            raise ValueError(f"observation group {self.name!r}: preprocess is for points "
                             f"groups, with keys among {list(PREPROCESS_KEYS)}; got kind "
                             f"{self.kind!r} and unknown keys {unknown}")
        return {k: (float(v) if k == "voxel_size" else tuple(float(x) for x in v))
                for k, v in self.preprocess.items()}

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample of the group's values."""
        if self.kind in ("points", "history"):
            return (self.length, self.channels.dim)
        return (self.channels.dim,)

    @property
    def size(self) -> int:
        """Number of values in one sample (the mask of a command not counted)."""
        out = 1
        for n in self.shape:
            out *= n
        return out

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the arrays (and ONNX inputs) that carry this group."""
        return (self.name, f"{self.name}_mask") if self.kind == "command" else (self.name,)

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        out = {"name": self.name, "kind": self.kind, "length": self.length,
               "dtype": self.dtype, "channels": asdict(self.channels)}
        if self.preprocess is not None:   # only then: older layouts serialise as before
            out["preprocess"] = {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in self.preprocess.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Group":
        """Inverse of `to_dict`."""
        c = d["channels"]
        channels = Spec(tuple(c["names"]), tuple(c.get("low", ())), tuple(c.get("high", ())),
                        c.get("units", ""))
        return cls(d["name"], d["kind"], channels, int(d.get("length", 0)),
                   d.get("dtype", "float32"), d.get("preprocess"))


@dataclass(frozen=True)
class ObsSpec:
    """An observation as named groups, in a fixed order (the order of the ONNX inputs).

    A flat vector is the one-group case: `ObsSpec.flat(spec)` is one ``vector`` group named
    ``obs``, whose single input ``obs`` is what a flat policy has always taken.
    """

    groups: tuple[Group, ...]

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("an observation spec needs at least one group")
        names = self.input_names
        if len(set(names)) != len(names):
            raise ValueError(f"observation group and input names must be unique, got {names}")

    @classmethod
    def flat(cls, spec: Spec) -> "ObsSpec":
        """The one-group spec of a flat observation vector."""
        return cls((Group(FLAT_GROUP, "vector", spec),))

    @classmethod
    def of(cls, spec: "Spec | ObsSpec") -> "ObsSpec":
        """`spec` itself if grouped, else its one-group form."""
        return spec if isinstance(spec, ObsSpec) else cls.flat(spec)

    @property
    def is_flat(self) -> bool:
        """True for one vector group: the policy takes one plain array."""
        return len(self.groups) == 1 and self.groups[0].kind == "vector"

    @property
    def input_names(self) -> tuple[str, ...]:
        """Every array name, group order (a command adds ``<name>_mask`` after it)."""
        return tuple(n for g in self.groups for n in g.input_names)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of every input array."""
        return {n: g.shape for g in self.groups for n in g.input_names}

    def group(self, name: str) -> Group:
        """The group called `name`, with the valid names in the error."""
        for g in self.groups:
            if g.name == name:
                return g
        raise ValueError(f"no observation group {name!r}; groups: "
                         f"{[g.name for g in self.groups]}")

    def to_json(self) -> str:
        """Serialise for metadata (ONNX, checkpoints, dataset shards)."""
        return json.dumps({"groups": [g.to_dict() for g in self.groups]})

    @classmethod
    def from_json(cls, text: str) -> "ObsSpec":
        """Inverse of `to_json`; a flat `Spec` JSON (files before groups) is one group."""
        d = json.loads(text)
        if "groups" not in d:
            return cls.flat(Spec.from_json(text))
        return cls(tuple(Group.from_dict(g) for g in d["groups"]))

    def check_same(self, other: "ObsSpec", where: str) -> None:
        """Raise a ValueError naming `where` if `other` is a different layout."""
        if self != other:
            raise ValueError(
                f"{where}: observation layout differs from the task's: expected "
                f"{self.describe()}, got {other.describe()}. Rebuild it for this task or "
                "pick the task it was made for.")

    def describe(self) -> str:
        """One line: each group's name, kind, shape and channel names."""
        return "; ".join(f"{g.name} ({g.kind} {g.shape}: {list(g.channels.names)})"
                         for g in self.groups)

    def check_arrays(self, obs: dict, where: str, batched: bool = True) -> None:
        """Raise a ValueError naming the input if `obs` lacks one or has the wrong shape."""
        missing = [n for n in self.input_names if n not in obs]
        extra = [n for n in obs if n not in self.input_names]
        if missing or extra:
            raise ValueError(f"{where}: observation inputs {sorted(obs)} do not match the "
                             f"spec's {list(self.input_names)} (missing {missing}, unknown "
                             f"{extra})")
        for name, shape in self.input_shapes().items():
            got = tuple(getattr(obs[name], "shape", ()))
            if (got[1:] if batched else got) != shape:
                want = ("(B, " + ", ".join(map(str, shape)) + ")") if batched else str(shape)
                raise ValueError(f"{where}: observation input {name!r} has shape {got}, "
                                 f"expected {want}")

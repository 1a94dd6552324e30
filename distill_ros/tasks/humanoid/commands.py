"""HOVER's command space (He et al. 2024, HOVER: versatile neural whole-body controller).

A command describes the clip's future frames in three kinds of target, each split into upper
and lower body (the root belongs to the lower body):
- kinematic positions of key bodies (head, hands / pelvis, feet), metres;
- local joint angles (a rotation vector per spherical joint, an angle per revolute joint), rad;
- the root: linear velocity (m/s), height (m) and yaw rate (rad/s).
Positions and velocities are expressed in a yaw-only frame at the current root (by default
the reference's own root now), so the command does not depend on where the clip is in the world.

A mask (1 keep, 0 drop) of the same size selects what the student is told: a **mode** names the
targets it may see (e.g. upper-body joint angles plus root velocity; head and hand positions;
everything), and a random **sparsity** mask drops whole items (one key body, one joint, one root
quantity) within the mode. Masked values are zeroed. Pure numpy; no simulator here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.skeleton import JOINTS, KEY_BODIES

ROOT_ITEMS = (("root_velocity", 3), ("root_height", 1), ("root_yaw_rate", 1))


@dataclass
class ReferenceFrames:
    """The clip at T times (now first, then the future): world frame, y up."""

    root_pos: np.ndarray  # (T, 3) m
    root_rot: np.ndarray  # (T, 4) x, y, z, w
    root_lin_vel: np.ndarray  # (T, 3) m/s
    root_ang_vel: np.ndarray  # (T, 3) rad/s
    joint_rot: list[np.ndarray]  # per skeleton.JOINTS: (T, 4) quaternions or (T, 1) angles
    body_pos: np.ndarray  # (T, len(KEY_BODIES), 3) m, in KEY_BODIES order


@dataclass(frozen=True)
class Item:
    """One maskable piece of a frame's command: its name, kind, body half and size."""

    name: str
    kind: str  # "keypoint" | "joint" | "root"
    upper: bool
    size: int


def _items() -> list[Item]:
    items = [Item(f"keypoint/{name}", "keypoint", upper, 3)
             for name, (_, upper) in KEY_BODIES.items()]
    items += [Item(f"joint/{j.name}", "joint", j.upper, j.dof) for j in JOINTS]
    items += [Item(f"root/{name}", "root", False, size) for name, size in ROOT_ITEMS]
    return items


ITEMS = tuple(_items())


def _select(kind: str | None = None, upper: bool | None = None,
            names: tuple[str, ...] = ()) -> frozenset[str]:
    return frozenset(i.name for i in ITEMS if (kind is None or i.kind == kind)
                     and (upper is None or i.upper == upper)
                     and (not names or i.name.split("/")[1] in names))


# Mode name -> the items it may show (HOVER's mode masks; sparsity then drops some of them).
MODES: dict[str, frozenset[str]] = {
    "full": _select(),
    "upper_joints_root_velocity": _select("joint", True) | _select("root", names=(
        "root_velocity",)),
    "head_hands": _select("keypoint", names=("head", "right_hand", "left_hand")),
    "upper_body": _select(upper=True),
    "lower_body": _select(upper=False),
    "keypoints": _select("keypoint"),
    "joints": _select("joint"),
    "root": _select("root"),
}


#: the modes a multi-mode student is evaluated on: HOVER's named examples
EVAL_MODES = ("full", "upper_joints_root_velocity", "head_hands")


class CommandSpace:
    """Layout of the command over `future_steps` control steps ahead, and its computation."""

    def __init__(self, future_steps: tuple[int, ...] = (1,)) -> None:
        if not future_steps or any(int(k) < 0 for k in future_steps):
            raise ValueError(f"future_steps must be non-negative control-step offsets such as "
                             f"(1,) or (1, 5), got {future_steps!r}")
        self.future_steps = tuple(int(k) for k in future_steps)
        self.frame_dim = sum(i.size for i in ITEMS)
        self.dim = self.frame_dim * len(self.future_steps)
        self.slices: dict[str, list[slice]] = {i.name: [] for i in ITEMS}
        start = 0
        for _ in self.future_steps:
            for item in ITEMS:
                self.slices[item.name].append(slice(start, start + item.size))
                start += item.size

    def names(self) -> list[str]:
        """One name per command element: `+k/item[axis]`."""
        out = []
        for k in self.future_steps:
            out += [f"+{k}/{i.name}[{a}]" for i in ITEMS for a in range(i.size)]
        return out

    def compute(self, frames: ReferenceFrames, root_pos: np.ndarray | None = None,
                root_rot: np.ndarray | None = None) -> np.ndarray:
        """The full (unmasked) command from frames [now, +1, +2, ...] (index k = k steps).

        Positions and velocities are expressed in the yaw frame of `root_pos`/`root_rot`
        (default: the reference root now, frame 0).
        """
        last = max(self.future_steps)
        if len(frames.root_pos) <= last:
            raise ValueError(f"the command needs frames up to +{last} control steps, got "
                             f"{len(frames.root_pos)} frames")
        origin = frames.root_pos[0] if root_pos is None else np.asarray(root_pos, float)
        rot = frames.root_rot[0] if root_rot is None else np.asarray(root_rot, float)
        inv_yaw = quat.yaw_quat(-quat.heading(rot))
        out = []
        for k in self.future_steps:
            keypoints = quat.rotate(inv_yaw, frames.body_pos[k] - origin)
            joints = [quat.to_rotvec(r[k]) if r.shape[1] == 4 else r[k] for r in frames.joint_rot]
            root = [quat.rotate(inv_yaw, frames.root_lin_vel[k]), [frames.root_pos[k, 1]],
                    [frames.root_ang_vel[k, 1]]]
            out.append(np.concatenate([keypoints.ravel(), *joints, *root]))
        return np.concatenate(out)

    def mask(self, items: frozenset[str] | set[str]) -> np.ndarray:
        """Elements to keep (1.0) so that the given items show in every future frame."""
        unknown = set(items) - set(self.slices)
        if unknown:
            raise ValueError(f"unknown command items {sorted(unknown)}; known: "
                             f"{', '.join(self.slices)}")
        m = np.zeros(self.dim, np.float32)
        for name in items:
            for s in self.slices[name]:
                m[s] = 1.0
        return m


class CommandSampler:
    """Per-episode mode and sparsity masks, optionally switched mid-episode; seeded.

    Each draw picks a mode from `modes` (uniformly, or in proportion to `weights`: mode ->
    weight, 1 for a mode left out), then, unless it keeps the mode whole (probability
    `whole_prob`: the masks an evaluation pins), drops each of its items with probability
    `sparsity` (keeping at least one). `switch_prob` is the chance per step of a fresh draw.
    """

    def __init__(self, space: CommandSpace, modes: tuple[str, ...] = tuple(MODES),
                 sparsity: float = 0.0, switch_prob: float = 0.0, seed: int = 0,
                 weights: Mapping[str, float] | None = None, whole_prob: float = 0.0) -> None:
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown:
            raise ValueError(f"modes must be a non-empty list of {', '.join(MODES)}; unknown: "
                             f"{unknown}")
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be a probability in [0, 1), got {sparsity}")
        for name, p in (("switch_prob", switch_prob), ("whole_prob", whole_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        w = np.array([float((weights or {}).get(m, 1.0)) for m in modes])
        if (w < 0).any() or w.sum() <= 0 or set(weights or {}) - set(modes):
            raise ValueError(f"weights must map modes to non-negative weights (1 if left out) "
                             f"with a positive sum over {list(modes)}, got {weights!r}")
        self.space, self.modes = space, tuple(modes)
        self.sparsity, self.switch_prob, self.whole_prob = sparsity, switch_prob, whole_prob
        self.p = None if weights is None else w / w.sum()
        self.rng = np.random.default_rng(seed)
        self.mode, self.items, self.current = self.modes[0], MODES[self.modes[0]], None

    def _draw(self) -> np.ndarray:
        if self.p is None:
            self.mode = self.modes[int(self.rng.integers(len(self.modes)))]
        else:
            self.mode = self.modes[int(self.rng.choice(len(self.modes), p=self.p))]
        names = sorted(MODES[self.mode])
        whole = self.whole_prob > 0.0 and self.rng.random() < self.whole_prob
        keep = self.rng.random(len(names)) >= (0.0 if whole else self.sparsity)
        if not keep.any():
            keep[int(self.rng.integers(len(names)))] = True
        self.items = frozenset(n for n, k in zip(names, keep) if k)
        self.current = self.space.mask(self.items)
        return self.current

    def reset(self, seed: int | None = None) -> np.ndarray:
        """A new episode: reseed when `seed` is given, draw a mode and sparsity mask."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self._draw()

    def step(self) -> np.ndarray:
        """The mask for the next step: the same, or with probability switch_prob a new draw."""
        if self.current is None:
            return self._draw()
        if self.switch_prob > 0.0 and self.rng.random() < self.switch_prob:
            return self._draw()
        return self.current


def apply_mask(command: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the masked elements (the student sees the mask and zeros, never hidden values)."""
    return np.where(mask > 0.5, command, 0.0).astype(np.float32)

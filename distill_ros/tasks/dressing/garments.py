"""Procedural garments: a sleeve (a straight tube) or a gown sleeve (a tube that flares).

Each garment is a triangle mesh of `RINGS` rings of `AROUND` vertices, the opening (armhole)
ring first at z = 0 and the cuff ring last at z = length, written once as an .obj file into a
cache folder (atomically, so concurrent workers never read half a file). The mesh's frame is
the gripper's: the opening ring lies in the xy plane around the origin.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill_ros.atomic import atomic_write_text

AROUND = 12      # vertices per ring
RINGS = 11       # rings from the opening to the cuff -> 132 vertices
CACHE_ENV = "DISTILL_ROS_GARMENT_CACHE"


@dataclass(frozen=True)
class Garment:
    """One garment's shape (m) and cloth parameters (pybullet's mass-spring model)."""

    name: str
    shape: str                 # "sleeve" (straight) or "gown" (opening wider than the cuff)
    opening_radius: float      # m
    cuff_radius: float         # m
    length: float              # m, opening to cuff
    stiffness: float           # springElasticStiffness, N/m
    friction: float            # frictionCoeff against the arm
    mass: float = 0.1          # kg

    def __post_init__(self) -> None:
        if self.shape not in ("sleeve", "gown"):
            raise ValueError(f"garment {self.name!r}: shape must be 'sleeve' or 'gown', got "
                             f"{self.shape!r}")
        if self.shape == "sleeve" and self.cuff_radius != self.opening_radius:
            raise ValueError(f"garment {self.name!r}: a sleeve has one radius; use shape "
                             "'gown' for a flared tube")
        for key in ("opening_radius", "cuff_radius", "length", "stiffness", "mass"):
            if not getattr(self, key) > 0:
                raise ValueError(f"garment {self.name!r}: {key} must be > 0, got "
                                 f"{getattr(self, key)}")


#: garments for training (several radii, lengths, stiffnesses, frictions) and one held out
TRAIN_GARMENTS = (
    Garment("sleeve_snug", "sleeve", 0.085, 0.085, 0.30, 40.0, 0.5),
    Garment("sleeve_loose", "sleeve", 0.10, 0.10, 0.36, 25.0, 0.3),
    Garment("gown_short", "gown", 0.11, 0.08, 0.28, 60.0, 0.4),
)
HELD_OUT_GARMENTS = (Garment("gown_long", "gown", 0.105, 0.075, 0.40, 35.0, 0.6),)
GARMENTS = {g.name: g for g in (*TRAIN_GARMENTS, *HELD_OUT_GARMENTS)}


def get_garment(name: str) -> Garment:
    """A garment by name, with the valid names in the error."""
    if name not in GARMENTS:
        raise ValueError(f"unknown garment {name!r}; valid choices: {list(GARMENTS)}")
    return GARMENTS[name]


def tube_mesh(garment: Garment) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (RINGS*AROUND, 3) and triangles (2*(RINGS-1)*AROUND, 3), opening ring first."""
    t = np.linspace(0.0, 1.0, RINGS)
    radius = garment.opening_radius + (garment.cuff_radius - garment.opening_radius) * t
    angle = 2 * np.pi * np.arange(AROUND) / AROUND
    verts = np.stack([np.outer(radius, np.cos(angle)), np.outer(radius, np.sin(angle)),
                      np.outer(t * garment.length, np.ones(AROUND))], axis=-1).reshape(-1, 3)
    ring, k = np.meshgrid(np.arange(RINGS - 1), np.arange(AROUND), indexing="ij")
    a = (ring * AROUND + k).ravel()
    b = (ring * AROUND + (k + 1) % AROUND).ravel()
    faces = np.concatenate([np.stack([a, b, b + AROUND], 1),
                            np.stack([a, b + AROUND, a + AROUND], 1)])
    return verts, faces


def ring_indices(ring: int) -> np.ndarray:
    """Vertex indices of ring `ring` (0: the opening, RINGS-1: the cuff)."""
    if not 0 <= ring < RINGS:
        raise ValueError(f"ring must be in [0, {RINGS - 1}], got {ring}")
    return np.arange(ring * AROUND, (ring + 1) * AROUND)


def cache_dir() -> Path:
    """Where garment meshes are written: $DISTILL_ROS_GARMENT_CACHE or ~/.cache/distill_ros."""
    default = Path.home() / ".cache" / "distill_ros" / "garments"
    return Path(os.environ.get(CACHE_ENV) or default)


def garment_file(garment: Garment, folder: Path | None = None) -> Path:
    """The garment's .obj file, written (atomically) if missing; same garment, same bytes."""
    folder = Path(folder) if folder is not None else cache_dir()
    verts, faces = tube_mesh(garment)
    lines = [f"# distill_ros garment {garment.name}: {garment.shape}, {len(verts)} vertices"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    text = "\n".join(lines) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]  # a changed mesh gets a new file
    path = folder / f"{garment.name}_{digest}.obj"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return path

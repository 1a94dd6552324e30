"""The dressed ratio: how far along the arm, from the hand to the shoulder, the opening has gone.

"One Policy to Dress Them All" (Wang et al., RSS 2023) scores a dressing attempt by the
fraction of the arm's length the garment covers. Here the arm is a polyline ordered from the
hand tip to the shoulder (tip, wrist, elbow, shoulder); the garment opening's centre is
projected onto it (closest point), and the arc length from the tip to that point, divided by
the polyline's length, is the ratio. Pure numpy.
"""

from __future__ import annotations

import numpy as np


def _check_polyline(polyline: np.ndarray) -> np.ndarray:
    line = np.asarray(polyline, dtype=np.float64)
    if line.ndim != 2 or line.shape[0] < 2 or line.shape[1] != 3:
        raise ValueError(f"polyline must be (K >= 2, 3) points, got shape {line.shape}")
    if np.any(np.linalg.norm(np.diff(line, axis=0), axis=1) <= 0.0):
        raise ValueError("polyline has a zero-length segment (repeated point)")
    return line


def project_onto_polyline(polyline: np.ndarray, point: np.ndarray,
                          extend_start: bool = False) -> tuple[float, np.ndarray]:
    """Arc length from the first vertex to `point`'s closest point on `polyline`, and that point.

    Ties between segments (a point equally close to two) go to the segment nearer the start.
    With `extend_start`, the first segment continues beyond the first vertex, where the arc
    is negative (how far short of the hand an opening still is).
    """
    line = _check_polyline(polyline)
    p = np.asarray(point, dtype=np.float64).reshape(3)
    starts, seg = line[:-1], np.diff(line, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    t = np.clip(np.einsum("ij,ij->i", p - starts, seg) / lengths**2, 0.0, 1.0)
    if extend_start:
        t[0] = min(float(np.einsum("j,j", p - starts[0], seg[0])) / lengths[0] ** 2, 1.0)
    closest = starts + t[:, None] * seg
    k = int(np.argmin(np.linalg.norm(closest - p, axis=1)))
    arc = float(lengths[:k].sum() + t[k] * lengths[k])
    return arc, closest[k]


def dressed_ratio(polyline: np.ndarray, opening_centre: np.ndarray,
                  opening_radius: float | None = None) -> float:
    """Fraction in [0, 1] of the polyline (hand tip first) that the opening centre has passed.

    With `opening_radius`, an opening whose centre is farther than that from the arm does
    not surround the arm, so it has dressed nothing: the ratio is 0.
    """
    line = _check_polyline(polyline)
    arc, closest = project_onto_polyline(line, opening_centre)
    if opening_radius is not None:
        if np.linalg.norm(np.asarray(opening_centre, dtype=np.float64) - closest) > opening_radius:
            return 0.0
    total = float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum())
    return float(np.clip(arc / total, 0.0, 1.0))


def progress(polyline: np.ndarray, opening_centre: np.ndarray, opening_radius: float) -> float:
    """The shaped progress the reward pays for: the signed arc fraction, 0 or less off the arm.

    Unlike `dressed_ratio` it is negative before the hand (an approach counts) and above 1
    past the shoulder is clipped to 1; an opening that has left the arm (centre farther than
    `opening_radius` from it) scores at most 0, so slipping off costs what was gained.
    """
    line = _check_polyline(polyline)
    centre = np.asarray(opening_centre, dtype=np.float64)
    arc, closest = project_onto_polyline(line, centre, extend_start=True)
    fraction = min(arc / float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum()), 1.0)
    return fraction if np.linalg.norm(centre - closest) <= opening_radius else min(fraction, 0.0)


def point_segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (m) from each of `points` (M, 3) to the segment from `a` to `b`."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ab = b - a
    t = np.clip((pts - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)

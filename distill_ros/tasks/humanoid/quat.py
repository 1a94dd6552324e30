"""Quaternion helpers in numpy, pybullet's order (x, y, z, w), broadcasting over leading axes."""

from __future__ import annotations

import numpy as np


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by + ay * bw + az * bx - ax * bz,
                     aw * bz + az * bw + ax * by - ay * bx,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion)."""
    q = np.asarray(q, float)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q, v = np.asarray(q, float), np.asarray(v, float)
    u, w = q[..., :3], q[..., 3:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def from_axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Unit quaternion of a rotation by `angle` (rad) about `axis` (normalised here)."""
    axis = np.asarray(axis, float)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    unit = np.where(norm > 1e-12, axis / np.maximum(norm, 1e-12), [1.0, 0.0, 0.0])
    half = 0.5 * np.asarray(angle, float)[..., None]
    return np.concatenate([unit * np.sin(half), np.cos(half)], axis=-1)


def angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle of unit quaternions, in [0, pi] (the shorter way round)."""
    q = np.asarray(q, float)
    return 2.0 * np.arctan2(np.linalg.norm(q[..., :3], axis=-1), np.abs(q[..., 3]))


def to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) of unit quaternions, angle in [0, pi]."""
    q = np.asarray(q, float)
    q = np.where(q[..., 3:] < 0, -q, q)
    s = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    ang = 2.0 * np.arctan2(s, q[..., 3:])
    return np.where(s > 1e-12, q[..., :3] / np.maximum(s, 1e-12) * ang, 2.0 * q[..., :3])


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from a (t=0) to b (t=1) along the shorter arc."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(theta)
    small = sin < 1e-6
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(small, 1.0, sin))
    wb = np.where(small, t, np.sin(t * theta) / np.where(small, 1.0, sin))
    out = wa * a + wb * b
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def heading(q: np.ndarray) -> np.ndarray:
    """Heading (rad) of y-up orientations: the angle of the rotated x axis about +y."""
    x = rotate(q, np.array([1.0, 0.0, 0.0]))
    return np.arctan2(-x[..., 2], x[..., 0])


def yaw_quat(theta: np.ndarray) -> np.ndarray:
    """Rotation by theta (rad) about the y (up) axis."""
    theta = np.asarray(theta, float)
    zero = np.zeros_like(theta)
    return np.stack([zero, np.sin(0.5 * theta), zero, np.cos(0.5 * theta)], axis=-1)

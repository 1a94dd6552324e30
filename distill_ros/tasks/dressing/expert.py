"""A scripted dresser: pull the opening along the arm's polyline, hand to shoulder.

It reads the privileged ``state`` vector (see `env.DressingEnv`): it steers the opening's
centre to a point a little further along the arm than its own projection, and turns the
gripper so the sleeve's axis lies along the arm there. It proves each pose range solvable
and gives the teachers a yardstick; it is no learned policy.
"""

from __future__ import annotations

import numpy as np

from distill_ros.tasks.dressing.env import MAX_SPEED, MAX_TURN
from distill_ros.tasks.dressing.geometry import project_onto_polyline

LOOKAHEAD = 0.08     # m along the arm beyond the opening's projection
GAIN = 4.0           # 1/s, velocity per metre of error
TURN_GAIN = 3.0      # 1/s, angular velocity per radian of misalignment

# slices of the state vector (env._observe)
_POLYLINE, _QUAT, _OPENING = slice(3, 15), slice(18, 22), slice(22, 25)


def point_at_arc(polyline: np.ndarray, arc: float) -> tuple[np.ndarray, np.ndarray]:
    """The point `arc` metres along `polyline` (clamped to its ends) and the unit tangent there."""
    seg = np.diff(polyline, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    ends = np.cumsum(lengths)
    k = min(int(np.searchsorted(ends, arc)), len(seg) - 1)
    t = np.clip((arc - (ends[k] - lengths[k])) / lengths[k], 0.0, 1.0)
    return polyline[k] + t * seg[k], seg[k] / lengths[k]


def expert_action(state: np.ndarray) -> np.ndarray:
    """Twist (vx, vy, vz m/s, wx, wy, wz rad/s) for one flat ``state`` vector."""
    s = np.asarray(state, dtype=np.float64).reshape(-1)
    line = s[_POLYLINE].reshape(4, 3)
    opening = s[_OPENING]
    arc, _ = project_onto_polyline(line, opening)
    target, tangent = point_at_arc(line, arc + LOOKAHEAD)
    velocity = np.clip(GAIN * (target - opening), -MAX_SPEED, MAX_SPEED)
    x, y, z, w = s[_QUAT]
    axis = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    want = -tangent                       # the sleeve runs from the opening towards the hand
    turn = np.clip(TURN_GAIN * np.cross(axis, want), -MAX_TURN, MAX_TURN)
    return np.concatenate([velocity, turn]).astype(np.float32)

"""Point-cloud preprocessing, the same in training (the dressing family) and in the node.

A depth image and a per-pixel label image become labelled world points
(`labelled_points`), and any labelled cloud (from a depth camera or a ``PointCloud2``)
becomes a fixed-size observation (`preprocess`):

1. crop to an axis-aligned box (m, the cloud's frame);
2. voxel-downsample each label apart (open3d), so a voxel never mixes arm and garment;
3. take exactly N points: farthest-point sampling (open3d, deterministic) when there are
   more, the rows repeated in order when fewer (`observation.select_points`).

A policy's ``points`` group carries its settings (`spec.Group.preprocess`, written by
`group_preprocess`), so the node rebuilds the group from a ``PointCloud2`` with the very
function and settings training used (`group_from_cloud`, `preprocess_group`).

No torch and no ROS here; open3d is imported where used, through `require_open3d`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from distill_ros.runtime.observation import cloud_points, points_from_cloud, select_points
from distill_ros.spec import Group

OPEN3D_HINT = ("open3d is needed for point-cloud observations: "
               "pip install 'distill_ros[pointcloud]'")


def require_open3d():
    """The open3d module, or an ImportError that says how to install it."""
    try:
        import open3d
    except ImportError as err:
        raise ImportError(OPEN3D_HINT) from err
    return open3d


@dataclass(frozen=True)
class CloudConfig:
    """How a cloud is preprocessed: crop box (m), voxel edge (m) and points kept."""

    n_points: int = 512
    voxel_size: float = 0.01
    crop_low: tuple[float, float, float] = (-np.inf, -np.inf, -np.inf)
    crop_high: tuple[float, float, float] = (np.inf, np.inf, np.inf)

    def __post_init__(self) -> None:
        if not isinstance(self.n_points, int) or self.n_points < 1:
            raise ValueError(f"n_points must be an integer >= 1, got {self.n_points!r}")
        if not self.voxel_size > 0:
            raise ValueError(f"voxel_size must be > 0 (m), got {self.voxel_size!r}")
        low, high = np.asarray(self.crop_low, float), np.asarray(self.crop_high, float)
        if low.shape != (3,) or high.shape != (3,) or np.any(low >= high):
            raise ValueError(f"crop_low must be 3 values below crop_high's, got "
                             f"{self.crop_low} and {self.crop_high}")


def depth_to_points(depth: np.ndarray, view_matrix, projection_matrix) -> np.ndarray:
    """World points (H, W, 3) of an OpenGL depth buffer (values in [0, 1], 1 = far plane).

    `view_matrix` and `projection_matrix` are OpenGL's (16 values, column-major, as pybullet
    returns them, or 4x4 arrays in row-major math order). Pixel (row v, column u) is sampled
    where pybullet's TinyRenderer samples it, at NDC x = 2u/W - 1, y = 1 - 2(v+1)/H (measured:
    a box face comes back to within a micrometre; pixel centres would be off by half a pixel).
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) image, got shape {depth.shape}")
    view, proj = (_gl_matrix(m, name) for m, name in ((view_matrix, "view_matrix"),
                                                      (projection_matrix, "projection_matrix")))
    h, w = depth.shape
    x = 2.0 * np.arange(w) / w - 1.0                    # NDC; row 0 is the top of the image
    y = 1.0 - 2.0 * (np.arange(h) + 1.0) / h
    xx, yy = np.meshgrid(x, y)
    ndc = np.stack([xx, yy, 2.0 * depth - 1.0, np.ones_like(depth)], axis=-1)
    world = ndc.reshape(-1, 4) @ np.linalg.inv(proj @ view).T
    return (world[:, :3] / world[:, 3:]).reshape(h, w, 3)


def _gl_matrix(m, name: str) -> np.ndarray:
    a = np.asarray(m, dtype=np.float64)
    if a.shape == (16,):
        return a.reshape(4, 4).T      # column-major list -> math order
    if a.shape == (4, 4):
        return a
    raise ValueError(f"{name} must have 16 values or be 4x4, got shape {a.shape}")


def labelled_points(depth: np.ndarray, labels: np.ndarray, view_matrix,
                    projection_matrix) -> np.ndarray:
    """(M, 4) x, y, z, label of the pixels with a label >= 0 in front of the far plane."""
    labels = np.asarray(labels)
    if labels.shape != np.shape(depth):
        raise ValueError(f"labels {labels.shape} and depth {np.shape(depth)} differ in shape")
    xyz = depth_to_points(depth, view_matrix, projection_matrix)
    keep = (labels >= 0) & (np.asarray(depth) < 1.0)
    return np.concatenate([xyz[keep], labels[keep, None].astype(np.float64)], axis=1)


def preprocess(points: np.ndarray, cfg: CloudConfig) -> np.ndarray:
    """(N, 4) float32 x, y, z, label: crop, voxel-downsample per label, then exactly N points.

    Deterministic: the same cloud gives the same array, in any process. The points are
    taken as float32 first, the precision a ``PointCloud2`` carries them in, so a cloud
    gives the same array here and after a trip through ROS.
    An empty cloud after cropping is a ValueError, as in `select_points`.
    """
    pts = np.asarray(np.asarray(points, dtype=np.float32), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise ValueError(f"points must be (M, 4): x, y, z, label; got shape {pts.shape}")
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    inside = np.all((pts[:, :3] >= cfg.crop_low) & (pts[:, :3] <= cfg.crop_high), axis=1)
    pts = _voxel_per_label(pts[inside], cfg.voxel_size)
    if len(pts) > cfg.n_points:
        pts = _farthest_points(pts, cfg.n_points)
    return select_points(pts, cfg.n_points).astype(np.float32)


def group_preprocess(cfg: CloudConfig) -> dict:
    """The ``preprocess`` of a points group made with `cfg` (its length is `cfg.n_points`)."""
    return {"voxel_size": cfg.voxel_size, "crop_low": tuple(cfg.crop_low),
            "crop_high": tuple(cfg.crop_high)}


def cloud_config(group: Group) -> CloudConfig:
    """The `CloudConfig` a points group was made with; ValueError if it has none."""
    if group.kind != "points" or group.preprocess is None:
        raise ValueError(f"group {group.name!r} ({group.kind}) has no point-cloud "
                         "preprocessing (spec.Group.preprocess)")
    return CloudConfig(n_points=group.length, **group.preprocess)


def preprocess_group(points: np.ndarray, group: Group) -> np.ndarray:
    """(N, C) float32 group from a labelled cloud (M, 4): `preprocess` with the group's settings.

    The group's channels must be x, y, z, label, the columns `preprocess` works on.
    """
    if tuple(group.channels.names) != ("x", "y", "z", "label"):
        raise ValueError(f"group {group.name!r}: preprocessing needs channels x, y, z, label, "
                         f"got {list(group.channels.names)}")
    try:
        return preprocess(points, cloud_config(group))
    except ValueError as err:
        raise ValueError(f"group {group.name!r}: {err}") from None


def prepare_group(group: Group) -> None:
    """Import open3d and run the group's preprocessing once, if it has any (no-op otherwise).

    The import takes seconds: a node calls this while it configures, so the first cloud of
    the control loop is preprocessed as fast as the rest.
    """
    if group.kind == "points" and group.preprocess is not None:
        cfg = cloud_config(group)
        low, high = np.asarray(cfg.crop_low), np.asarray(cfg.crop_high)
        centre = np.where(np.isfinite(low) & np.isfinite(high), (low + high) / 2, 0.0)
        preprocess_group(np.array([[*centre, 0.0], [*centre, 1.0]]), group)


def group_from_cloud(group: Group, fields: Sequence[Any], point_step: int, data: bytes,
                     width: int, height: int = 1, row_step: Optional[int] = None,
                     is_bigendian: bool = False) -> np.ndarray:
    """A ``points`` group from the parts of a ``PointCloud2`` (`observation.cloud_points`).

    A group with preprocessing gets `preprocess_group`, as training computed it; any other
    the fixed-N selection of `observation.points_from_cloud`.
    """
    parts = (fields, point_step, data, width, height, row_step, is_bigendian)
    if group.preprocess is None:
        return points_from_cloud(group, *parts)
    return preprocess_group(cloud_points(group, *parts), group)


def _voxel_per_label(pts: np.ndarray, voxel: float) -> np.ndarray:
    """Voxel centroids of each label's points, sorted (x, y, z) within a label."""
    o3d = require_open3d()
    out = []
    for label in np.unique(pts[:, 3]):
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[pts[:, 3] == label, :3]))
        xyz = np.asarray(cloud.voxel_down_sample(voxel).points)
        xyz = xyz[np.lexsort(xyz.T[::-1])]          # open3d's output order is a hash map's
        out.append(np.concatenate([xyz, np.full((len(xyz), 1), label)], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 4))


def _farthest_points(pts: np.ndarray, n: int) -> np.ndarray:
    """`n` of `pts` by open3d's farthest-point sampling from the first row; labels kept."""
    o3d = require_open3d()
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[:, :3]))
    # the label rides along as a colour: sampling selects points, it never averages them
    cloud.colors = o3d.utility.Vector3dVector(np.repeat(pts[:, 3:4], 3, axis=1))
    picked = cloud.farthest_point_down_sample(n)
    return np.concatenate([np.asarray(picked.points), np.asarray(picked.colors)[:, :1]], axis=1)
